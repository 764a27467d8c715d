package canary

import "testing"

const kserveTraffic = "    mode: kserve\n    kserve: {inferenceService: fraud-detector}\n"

const goodLLMISVC = `    mode: llmisvc
    llmisvc:
      router: qwen-stable
      stable: {name: qwen-stable, backend: qwen-stable-inference-pool}
      canary: {name: qwen-canary, backend: qwen-canary-inference-pool}
`

func TestValidateLLMISVCTraffic(t *testing.T) {
	const f = "spec.traffic.llmisvc."
	cases := []struct {
		name, traffic string
		want          []string
	}{
		{"valid", goodLLMISVC, nil},
		{"a third router", `    mode: llmisvc
    llmisvc:
      router: qwen-router
      stable: {name: qwen-stable, backend: qwen-stable-kserve-workload-svc}
      canary: {name: qwen-canary, backend: qwen-canary-kserve-workload-svc}
`, nil},
		{"missing block", "    mode: llmisvc\n", []string{`spec.traffic.llmisvc: is required in mode "llmisvc"`}},
		{"other modes' blocks", goodLLMISVC + "    kserve: {inferenceService: x}\n    gateway: {httpRoute: r}\n",
			[]string{`spec.traffic.kserve: must be empty in mode "llmisvc"`, `spec.traffic.gateway: must be empty in mode "llmisvc"`}},
		{"empty members", "    mode: llmisvc\n    llmisvc: {router: Qwen}\n", []string{
			f + `router: must be a DNS label naming an LLMInferenceService, got "Qwen"`,
			f + `stable.name: must be a DNS label, got ""`, f + `stable.backend: must be a DNS label, got ""`,
			f + `canary.name: must be a DNS label, got ""`, f + `canary.backend: must be a DNS label, got ""`,
		}},
		{"same members", `    mode: llmisvc
    llmisvc:
      router: qwen
      stable: {name: qwen, backend: qwen-inference-pool}
      canary: {name: qwen, backend: qwen-inference-pool}
`, []string{f + `canary.name: must differ from the stable one "qwen"`,
			f + `canary.backend: must differ from the stable backend "qwen-inference-pool"`}},
		{"llmisvc block in kserve mode", kserveTraffic + "    llmisvc: {router: qwen}\n",
			[]string{`spec.traffic.llmisvc: must be empty in mode "kserve"`}},
		{"unknown field", goodLLMISVC + "      weights: {qwen-stable: 100}\n",
			[]string{"spec.traffic.llmisvc.weights: unknown field"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, edit(t, kserveTraffic, tc.traffic), tc.want)
		})
	}
}
