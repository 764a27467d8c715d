package canary

import (
	"strings"
	"testing"
)

func judgePlan(preset, metrics string) string {
	return `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: qwen}
spec:
  model: {name: qwen, source: {oci: {repository: ghcr.io/acme/qwen}}}
  traffic: {mode: kserve, kserve: {inferenceService: qwen}}
  overlay: manifests/overlays/qwen
  argocd: {application: qwen}
  signals: {preset: ` + preset + `, stable: {role: stable}, canary: {role: canary}}
  steps:
  - setWeight: 10
  - analysis: {gates: [judge]}
  gates:
  - name: judge
    judge: {metrics: ` + metrics + `}
`
}

func TestJudgeMetricsOfferedByPreset(t *testing.T) {
	cases := []struct {
		preset, metrics, wantErr string
	}{
		{"vllm", "[errors, latency, ttft, tpot]", ""},
		{"vllm", "[tpot]", ""},
		{"kserve", "[errors, latency]", ""},
		{"kserve", "[latency, tpot]", `spec.gates[0].judge.metrics[1]: metric "tpot" is not offered by the preset`},
		{"kserve", "[ttft]", `spec.gates[0].judge.metrics[0]: metric "ttft" is not offered by the preset`},
	}
	for _, tc := range cases {
		_, err := ParsePlan([]byte(judgePlan(tc.preset, tc.metrics)))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s %s: %v", tc.preset, tc.metrics, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s %s: error %v, want %q", tc.preset, tc.metrics, err, tc.wantErr)
		}
	}
}

// TPOT is opt-in: the vllm defaults are errors, latency, ttft and the
// fail-only latency tail, so plans keep their false-revert budget split.
func TestJudgeDefaultMetricsLeaveTPOTOptIn(t *testing.T) {
	p, err := ParsePlan([]byte(strings.Replace(judgePlan("vllm", "[]"), "judge: {metrics: []}", "judge: {}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Spec.Gates[0].Judge.Metrics, ","); got != "errors,latency,ttft,latencyTail" {
		t.Fatalf("default vllm judge metrics %q", got)
	}
}
