package kustomize

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
	"sigs.k8s.io/yaml"
)

// repoRoot is the module root, where manifests/ and examples/ live.
const repoRoot = "../.."

// seed describes one example plan and the stable artifact its base serves.
type seed struct {
	example string
	stable  string
}

func seeds() []seed {
	return []seed{
		{"examples/qwen-gateway.yaml", "hf://Qwen/Qwen2.5-0.5B-Instruct"},
		{"examples/fraud-detector-kserve.yaml", "gs://kfserving-examples/models/sklearn/1.0/model"},
		{"examples/qwen-llmisvc.yaml", "hf://Qwen/Qwen2.5-0.5B-Instruct"},
	}
}

// loadExample decodes an example strictly into the plan schema, then runs
// the core's own parser (defaults and validation) over it.
func loadExample(t *testing.T, rel string) *canary.CanaryPlan {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	var strict canary.CanaryPlan
	if err := yaml.UnmarshalStrict(data, &strict); err != nil {
		t.Fatalf("%s does not match the CanaryPlan schema: %v", rel, err)
	}
	if strict.APIVersion != canary.APIVersion || strict.Kind != canary.KindCanaryPlan {
		t.Errorf("%s: apiVersion/kind = %s/%s", rel, strict.APIVersion, strict.Kind)
	}
	templates := canary.GateTemplates{}
	tf := filepath.Join(repoRoot, "examples/gate-templates.yaml")
	tb, err := os.ReadFile(tf)
	if err != nil {
		t.Fatal(err)
	}
	if err := templates.AddFile(tf, tb); err != nil {
		t.Fatal(err)
	}
	plan, err := canary.ParsePlanWith(data, templates)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return plan
}

func TestExamplesMatchSchema(t *testing.T) {
	for _, s := range seeds() {
		t.Run(path.Base(s.example), func(t *testing.T) {
			plan := loadExample(t, s.example)
			if plan.Spec.Model.Source.OCI == nil || plan.Spec.ArgoCD.Application == "" {
				t.Errorf("plan lacks an OCI source or Argo CD application: %+v", plan.Spec)
			}
			var weights []int
			for _, st := range plan.Spec.Steps {
				if st.SetWeight != nil {
					weights = append(weights, *st.SetWeight)
				}
			}
			if len(weights) == 0 || weights[len(weights)-1] != 100 {
				t.Errorf("setWeight steps = %v, want them to end at 100", weights)
			}
			judges := 0
			for _, g := range plan.Spec.Gates {
				switch {
				case g.Type == canary.GateJudge && g.Judge != nil:
					judges++
				case g.Type == canary.GateGauge && g.Gauge != nil:
				case g.Type == canary.GateThreshold && g.Threshold != nil && g.Threshold.SuccessCondition != "":
				default:
					t.Errorf("gate %s: want a judge, a gauge, or a threshold gate with a successCondition", g.Name)
				}
			}
			if judges == 0 || plan.Spec.Signals == nil {
				t.Errorf("want the judge over a signals preset; %d judge gates, signals %+v", judges, plan.Spec.Signals)
			}
			if fi, err := os.Stat(filepath.Join(repoRoot, plan.Spec.Overlay)); err != nil || !fi.IsDir() {
				t.Errorf("overlay %s is not a directory in the repo: %v", plan.Spec.Overlay, err)
			}
		})
	}
}

// TestManifestsBuildAtStable builds the committed overlays as Argo CD would
// and checks that they serve the stable model only.
func TestManifestsBuildAtStable(t *testing.T) {
	b := NewBuilder()
	for _, s := range seeds() {
		plan := loadExample(t, s.example)
		t.Run(plan.Spec.Overlay, func(t *testing.T) {
			out, err := b.Build(context.Background(), dirFS(t, repoRoot), plan.Spec.Overlay)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			e, err := Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			switch tr := plan.Spec.Traffic; tr.Mode {
			case canary.ModeGateway:
				g := tr.Gateway
				wantGatewayAt(t, e, g, s.stable)
			case canary.ModeKServe:
				isvc := e.InferenceServices[tr.KServe.InferenceService]
				if isvc.StorageURI != s.stable || isvc.CanaryTrafficPercent == nil || *isvc.CanaryTrafficPercent != 100 {
					t.Errorf("%s = %+v, want storageUri %s and canaryTrafficPercent 100", tr.KServe.InferenceService, isvc, s.stable)
				}
				if isvc.Namespace != "models" {
					t.Errorf("namespace = %q, want models", isvc.Namespace)
				}
			case canary.ModeLLMISVC:
				wantLLMISVCAt(t, e, tr.LLMISVC, s.stable)
			default:
				t.Fatalf("unexpected mode %s", tr.Mode)
			}
		})
	}
}

func wantGatewayAt(t *testing.T, e *Expressed, g *canary.GatewayTraffic, stable string) {
	t.Helper()
	route, ok := e.HTTPRoutes[g.HTTPRoute]
	if !ok {
		t.Fatalf("no HTTPRoute %s in %v", g.HTTPRoute, e.HTTPRoutes)
	}
	if w := route.Weights; w[g.Stable.Service] != 100 || w[g.Canary.Service] != 0 {
		t.Errorf("weights = %v, want %s 100 and %s 0", w, g.Stable.Service, g.Canary.Service)
	}
	for _, name := range []string{g.Stable.InferenceService, g.Canary.InferenceService} {
		if got := e.InferenceServices[name].StorageURI; got != stable {
			t.Errorf("%s storageUri = %q, want %q", name, got, stable)
		}
	}
}

// TestManifestsComponentIsInitialRender checks that each committed
// canarybot/ component is exactly what the Renderer writes for "stable only"
// (bootstrapping from the overlay), so the bot's first render is a no-op.
// With -update it rewrites them.
func TestManifestsComponentIsInitialRender(t *testing.T) {
	r := NewRenderer(nil)
	for _, s := range seeds() {
		plan := loadExample(t, s.example)
		t.Run(plan.Spec.Overlay, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, filepath.Join(root, "manifests"), readTree(t, filepath.Join(repoRoot, "manifests")))
			if err := os.RemoveAll(filepath.Join(root, plan.Spec.Overlay, ComponentDir)); err != nil {
				t.Fatal(err)
			}
			files, err := r.Render(context.Background(), diskTree(t, root), plan, canary.Desired{Stable: s.stable})
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			dir := filepath.Join(repoRoot, plan.Spec.Overlay, ComponentDir)
			if *update {
				component := map[string][]byte{}
				for p, b := range files {
					component[path.Base(p)] = b
				}
				writeTree(t, dir, component)
			}
			committed := map[string][]byte{}
			for rel, b := range readTree(t, dir) {
				committed[path.Join(plan.Spec.Overlay, ComponentDir, rel)] = b
			}
			expectMatchingTrees(t, files, committed)
		})
	}
}

// Stable reads what each seed's base serves, before any rollout.
func TestStableReadsTheOverlay(t *testing.T) {
	for _, sd := range seeds() {
		plan := loadExample(t, sd.example)
		a, err := NewRenderer(nil).Stable(context.Background(), diskTree(t, repoRoot), plan)
		if err != nil {
			t.Fatalf("%s: %v", sd.example, err)
		}
		if a.URI != sd.stable {
			t.Errorf("%s: stable = %q, want %q", sd.example, a.URI, sd.stable)
		}
	}
}
