package kustomize

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

func llmisvcTraffic() canary.TrafficSpec {
	return canary.TrafficSpec{
		Mode: canary.ModeLLMISVC,
		LLMISVC: &canary.LLMISVCTraffic{
			Router: "qwen-llm-stable",
			Stable: canary.LLMISVCMember{Name: "qwen-llm-stable", Backend: "qwen-llm-stable-inference-pool"},
			Canary: canary.LLMISVCMember{Name: "qwen-llm-canary", Backend: "qwen-llm-canary-inference-pool"},
		},
	}
}

// wantLLMISVC checks both members' model URIs and, in every rule of the
// stable member's inline route, the two weights.
func wantLLMISVC(stableURI, canaryURI string, stableW, canaryW int) func(t *testing.T, e *Expressed) {
	return func(t *testing.T, e *Expressed) {
		t.Helper()
		for name, uri := range map[string]string{"qwen-llm-stable": stableURI, "qwen-llm-canary": canaryURI} {
			if s := e.LLMInferenceServices[name]; !s.HasModelURI || s.ModelURI != uri {
				t.Errorf("%s spec.model.uri = %q, want %q", name, s.ModelURI, uri)
			}
		}
		rules := e.LLMInferenceServices["qwen-llm-stable"].Rules
		if len(rules) != 2 {
			t.Fatalf("stable member has %d rules, want 2", len(rules))
		}
		for ri, r := range rules {
			got := map[string]int{}
			for _, b := range r.BackendRefs {
				got[b.Name] = b.Weight
			}
			if got["qwen-llm-stable-inference-pool"] != stableW || got["qwen-llm-canary-inference-pool"] != canaryW {
				t.Errorf("rule %d weights = %v, want stable %d canary %d", ri, got, stableW, canaryW)
			}
		}
		if len(e.LLMInferenceServices["qwen-llm-canary"].Rules) != 0 {
			t.Error("the canary member grew a route")
		}
	}
}

// renderLLM renders the llmisvc-initial tree with base files replaced.
func renderLLM(t *testing.T, traffic canary.TrafficSpec, base map[string]string) (map[string][]byte, error) {
	t.Helper()
	root := copyTree(t, filepath.Join("testdata", "llmisvc-initial", "original"))
	files := readTree(t, root)
	for name, content := range base {
		files["base/"+name] = []byte(content)
	}
	writeTree(t, root, files)
	return NewRenderer(nil).Render(context.Background(), diskTree(t, root), testPlan("overlay", traffic),
		canary.Desired{Stable: qwenStable, Canary: qwenCanary, CanaryWeight: 20})
}

const llmCanaryOnly = `apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: {name: qwen-llm-canary}
spec:
  model: {uri: hf://Qwen/Qwen2.5-1.5B-Instruct}
`

// A route can be carried by a third LLMInferenceService; its patch sets
// weights only, and the backends' indices are found per rule.
func TestRenderLLMISVCThirdRouter(t *testing.T) {
	tr := llmisvcTraffic()
	tr.LLMISVC.Router = "qwen-llm-router"
	router := `apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: {name: qwen-llm-router}
spec:
  model: {uri: hf://Qwen/Qwen2.5-0.5B-Instruct}
  router:
    route:
      http:
        spec:
          rules:
          - backendRefs:
            - {name: other-pool}
          - backendRefs:
            - {name: qwen-llm-canary-inference-pool}
            - {name: qwen-llm-stable-inference-pool, weight: 5}
`
	files, err := renderLLM(t, tr, map[string]string{
		"kustomization.yaml": "resources: [llminferenceservice-stable.yaml, llminferenceservice-canary.yaml, router.yaml]\n",
		"router.yaml":        router,
	})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	patch := string(files["overlay/canarybot/llminferenceservice-qwen-llm-router.yaml"])
	want := Header + "\n" +
		"- op: test\n  path: /spec/router/route/http/spec/rules/1/backendRefs/1/name\n  value: \"qwen-llm-stable-inference-pool\"\n" +
		"- op: replace\n  path: /spec/router/route/http/spec/rules/1/backendRefs/1/weight\n  value: 80\n" +
		"- op: test\n  path: /spec/router/route/http/spec/rules/1/backendRefs/0/name\n  value: \"qwen-llm-canary-inference-pool\"\n" +
		"- op: add\n  path: /spec/router/route/http/spec/rules/1/backendRefs/0/weight\n  value: 20\n"
	if patch != want {
		t.Errorf("router patch:\n%s\nwant:\n%s", patch, want)
	}
	if strings.Contains(patch, "/spec/model/uri") {
		t.Error("the router's model URI is patched, but it is no member")
	}
	if len(files) != 4 {
		t.Errorf("got %d files, want the kustomization and three patches", len(files))
	}
}

func TestRenderLLMISVCRefusesWhatItCannotExpress(t *testing.T) {
	cases := []struct {
		name    string
		traffic func(*canary.LLMISVCTraffic)
		base    map[string]string
		want    string
	}{
		{"user-managed route", nil, map[string]string{"llminferenceservice-stable.yaml": `apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: {name: qwen-llm-stable}
spec:
  model: {uri: hf://Qwen/Qwen2.5-0.5B-Instruct}
  router: {route: {http: {refs: [{name: qwen}]}}}
`}, "routes through a user-managed HTTPRoute (spec.router.route.http.refs); split that route with traffic mode gateway"},
		{"no rule with both backends", func(l *canary.LLMISVCTraffic) { l.Canary.Backend = "qwen-llm-canary-kserve-workload-svc" }, nil,
			"has no rule in spec.router.route.http.spec listing all of the backends qwen-llm-stable-inference-pool, qwen-llm-canary-kserve-workload-svc"},
		{"missing member", func(l *canary.LLMISVCTraffic) { l.Canary.Name = "qwen-llm-next" }, nil,
			"overlay has no LLMInferenceService named qwen-llm-next"},
		{"no model uri", nil, map[string]string{"llminferenceservice-canary.yaml": strings.Replace(llmCanaryOnly,
			"model: {uri: hf://Qwen/Qwen2.5-1.5B-Instruct}", "model: {name: qwen}", 1)},
			"LLMInferenceService qwen-llm-canary has no spec.model.uri"},
		{"same members", func(l *canary.LLMISVCTraffic) { l.Canary = l.Stable }, nil,
			"stable and canary must name different LLMInferenceServices and backends"},
		{"duplicate backend", nil, map[string]string{"llminferenceservice-stable.yaml": `apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: {name: qwen-llm-stable}
spec:
  model: {uri: hf://Qwen/Qwen2.5-0.5B-Instruct}
  router:
    route:
      http:
        spec:
          rules:
          - backendRefs: [{name: qwen-llm-stable-inference-pool}, {name: qwen-llm-canary-inference-pool}, {name: qwen-llm-stable-inference-pool}]
`}, "rules[0]: backend qwen-llm-stable-inference-pool appears at both 0 and 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := llmisvcTraffic()
			if tc.traffic != nil {
				tc.traffic(tr.LLMISVC)
			}
			_, err := renderLLM(t, tr, tc.base)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if !canary.IsTerminal(err) {
				t.Errorf("err = %v, want a terminal error: retrying cannot fix it", err)
			}
		})
	}
}

func TestStableReadsTheLLMISVCStableMember(t *testing.T) {
	root := copyTree(t, filepath.Join("testdata", "llmisvc-30", "expected"))
	a, err := NewRenderer(nil).Stable(context.Background(), diskTree(t, root), testPlan("overlay", llmisvcTraffic()))
	if err != nil {
		t.Fatal(err)
	}
	if a.URI != qwenStable {
		t.Errorf("stable = %q, want %q", a.URI, qwenStable)
	}
	_, err = NewRenderer(nil).Stable(context.Background(), diskTree(t, root), testPlan("overlay", func() canary.TrafficSpec {
		tr := llmisvcTraffic()
		tr.LLMISVC.Stable.Name = "nope"
		return tr
	}()))
	if err == nil || !canary.IsTerminal(err) || !strings.Contains(err.Error(), `has no LLMInferenceService "nope"`) {
		t.Errorf("err = %v, want a terminal error naming the missing member", err)
	}
}

func TestParseTwoLLMISVCsOfOneName(t *testing.T) {
	doc := "apiVersion: serving.kserve.io/v1alpha2\nkind: LLMInferenceService\nmetadata: {name: a}\nspec: {model: {uri: hf://x}}\n"
	_, err := Parse([]byte(doc + "---\n" + doc))
	if err == nil || !strings.Contains(err.Error(), "two LLMInferenceServices named a") {
		t.Fatalf("err = %v", err)
	}
}

// wantLLMISVCAt checks an overlay at rest: both members on stable, all of
// the route's weight on the stable backend.
func wantLLMISVCAt(t *testing.T, e *Expressed, l *canary.LLMISVCTraffic, stable string) {
	t.Helper()
	for _, m := range []canary.LLMISVCMember{l.Stable, l.Canary} {
		s := e.LLMInferenceServices[m.Name]
		if s.ModelURI != stable || s.Namespace != "models" {
			t.Errorf("%s = %+v, want spec.model.uri %s in namespace models", m.Name, s, stable)
		}
	}
	r := e.LLMInferenceServices[l.Router]
	for b, want := range map[string]int{l.Stable.Backend: 100, l.Canary.Backend: 0} {
		if w, ok := r.Weight(b); !ok || w != want {
			t.Errorf("%s backend %s weight = %d (%v), want %d", l.Router, b, w, ok, want)
		}
	}
}
