package kustomize

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

// goldenCase renders testdata/<name>/original and compares the whole tree
// with testdata/<name>/expected. want lists values the built overlay must
// carry afterwards, independently of the golden files.
type goldenCase struct {
	name    string
	traffic canary.TrafficSpec
	d       canary.Desired
	want    func(t *testing.T, e *Expressed)
}

func wantISVC(name, uri string, pct *int) func(t *testing.T, e *Expressed) {
	return func(t *testing.T, e *Expressed) {
		t.Helper()
		s := e.InferenceServices[name]
		if s.StorageURI != uri {
			t.Errorf("%s storageUri = %q, want %q", name, s.StorageURI, uri)
		}
		if pct == nil {
			return
		}
		if s.CanaryTrafficPercent == nil || *s.CanaryTrafficPercent != *pct {
			t.Errorf("%s canaryTrafficPercent = %v, want %d", name, s.CanaryTrafficPercent, *pct)
		}
	}
}

func wantGateway(stableURI, canaryURI string, stableW, canaryW int) func(t *testing.T, e *Expressed) {
	return func(t *testing.T, e *Expressed) {
		t.Helper()
		wantISVC("qwen-stable", stableURI, nil)(t, e)
		wantISVC("qwen-canary", canaryURI, nil)(t, e)
		w := e.HTTPRoutes["qwen"].Weights
		if w["qwen-stable-predictor"] != stableW || w["qwen-canary-predictor"] != canaryW {
			t.Errorf("weights = %v, want stable %d canary %d", w, stableW, canaryW)
		}
	}
}

func ptr(i int) *int { return &i }

func TestRenderGolden(t *testing.T) {
	cases := []goldenCase{
		{"kserve-initial", kserveTraffic(),
			canary.Desired{Stable: fraudStable, Canary: fraudCanary, CanaryWeight: 10},
			wantISVC("fraud-detector", fraudCanary, ptr(10))},
		{"kserve-promoted", kserveTraffic(),
			canary.Desired{Stable: fraudCanary},
			wantISVC("fraud-detector", fraudCanary, ptr(100))},
		{"kserve-reverted", kserveTraffic(),
			canary.Desired{Stable: fraudStable},
			wantISVC("fraud-detector", fraudStable, ptr(100))},
		{"kserve-bootstrap", kserveTraffic(),
			canary.Desired{Stable: fraudStable},
			wantISVC("fraud-detector", fraudStable, ptr(100))},
		{"kserve-framework-key", kserveTraffic(),
			canary.Desired{Stable: fraudStable, Canary: fraudCanary, CanaryWeight: 25},
			wantISVC("fraud-detector", fraudCanary, ptr(25))},
		{"gateway-30", gatewayTraffic(),
			canary.Desired{Stable: qwenStable, Canary: qwenCanary, CanaryWeight: 30},
			wantGateway(qwenStable, qwenCanary, 70, 30)},
		{"gateway-promoted", gatewayTraffic(),
			canary.Desired{Stable: qwenCanary},
			wantGateway(qwenCanary, qwenCanary, 100, 0)},
		{"gateway-reordered", gatewayTraffic(),
			canary.Desired{Stable: qwenStable, Canary: qwenCanary, CanaryWeight: 30},
			wantGateway(qwenStable, qwenCanary, 70, 30)},
		{"llmisvc-initial", llmisvcTraffic(),
			canary.Desired{Stable: qwenStable},
			wantLLMISVC(qwenStable, qwenStable, 100, 0)},
		{"llmisvc-30", llmisvcTraffic(),
			canary.Desired{Stable: qwenStable, Canary: qwenCanary, CanaryWeight: 30},
			wantLLMISVC(qwenStable, qwenCanary, 70, 30)},
		{"llmisvc-promoted", llmisvcTraffic(),
			canary.Desired{Stable: qwenCanary},
			wantLLMISVC(qwenCanary, qwenCanary, 100, 0)},
		{"llmisvc-reverted", llmisvcTraffic(),
			canary.Desired{Stable: qwenStable},
			wantLLMISVC(qwenStable, qwenStable, 100, 0)},
	}
	b := NewBuilder()
	r := NewRenderer(b)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runGolden(t, r, b, tc) })
	}
}

// runGolden renders one golden case, builds the result, checks tc.want and
// compares the tree with testdata/<name>/expected (-update rewrites it).
func runGolden(t *testing.T, r *Renderer, b *Builder, tc goldenCase) {
	t.Helper()
	ctx := context.Background()
	original := filepath.Join("testdata", tc.name, "original")
	root := copyTree(t, original)
	before := readTree(t, root)
	files, err := r.Render(ctx, diskTree(t, root), testPlan("overlay", tc.traffic), tc.d)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	expectMatchingTrees(t, readTree(t, root), before) // Render writes nothing
	for p, content := range files {
		if !strings.HasPrefix(p, "overlay/canarybot/") {
			t.Errorf("returned path %s is outside the component", p)
		}
		if !bytes.HasPrefix(content, []byte(Header+"\n")) {
			t.Errorf("%s lacks the header", p)
		}
		before[p] = content // as the commit writes it
	}
	writeTree(t, root, before)
	got := readTree(t, root)
	out, err := b.Build(ctx, dirFS(t, root), "overlay")
	if err != nil {
		t.Fatalf("Build after Render: %v", err)
	}
	e, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	tc.want(t, e)

	expected := filepath.Join("testdata", tc.name, "expected")
	if *update {
		writeTree(t, expected, got)
	}
	expectMatchingTrees(t, got, readTree(t, expected))
}

// TestRenderReorderedRepairsGuards shows why indices are rediscovered: the
// committed component's test operations no longer match the human's order,
// so the overlay does not build until Render rewrites them.
func TestRenderReorderedRepairsGuards(t *testing.T) {
	root := copyTree(t, filepath.Join("testdata", "gateway-reordered", "original"))
	b := NewBuilder()
	_, err := b.Build(context.Background(), dirFS(t, root), "overlay")
	t.Logf("err: %v", err)
	if err == nil || !strings.Contains(err.Error(), "test") {
		t.Fatalf("Build of reordered tree with stale guards: err = %v, want a failed test operation", err)
	}
	files, err := NewRenderer(b).Render(context.Background(), diskTree(t, root), testPlan("overlay", gatewayTraffic()),
		canary.Desired{Stable: qwenStable, Canary: qwenCanary, CanaryWeight: 10})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	patch := string(files["overlay/canarybot/httproute-qwen.yaml"])
	want := "- op: test\n  path: /spec/rules/0/backendRefs/1/name\n  value: \"qwen-stable-predictor\"\n" +
		"- op: replace\n  path: /spec/rules/0/backendRefs/1/weight\n  value: 90\n"
	if !strings.Contains(patch, want) {
		t.Errorf("route patch does not guard and set the stable weight at index 1:\n%s", patch)
	}
}

func TestRenderHumanOwnedConflict(t *testing.T) {
	original := filepath.Join("testdata", "human-owned-conflict", "original")
	root := copyTree(t, original)
	before := readTree(t, root)
	_, err := NewRenderer(nil).Render(context.Background(), diskTree(t, root), testPlan("overlay", kserveTraffic()),
		canary.Desired{Stable: fraudStable, Canary: fraudCanary, CanaryWeight: 10})
	t.Logf("err: %v", err)
	if !errors.Is(err, canary.ErrHumanOwned) {
		t.Fatalf("err = %v, want ErrHumanOwned", err)
	}
	if !canary.IsTerminal(err) {
		t.Errorf("err = %v, want terminal", err)
	}
	expectMatchingTrees(t, readTree(t, root), before)
}

func TestRenderHumanOwnedPatchFile(t *testing.T) {
	root := copyTree(t, filepath.Join("testdata", "kserve-initial", "original"))
	p := filepath.Join(root, "overlay", "canarybot", "inferenceservice-fraud-detector.yaml")
	if err := os.WriteFile(p, []byte("# mine\n- op: add\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := readTree(t, root)
	_, err := NewRenderer(nil).Render(context.Background(), diskTree(t, root), testPlan("overlay", kserveTraffic()),
		canary.Desired{Stable: fraudStable})
	if !errors.Is(err, canary.ErrHumanOwned) || !canary.IsTerminal(err) {
		t.Fatalf("err = %v, want terminal ErrHumanOwned", err)
	}
	expectMatchingTrees(t, readTree(t, root), before)
}

func TestRenderSymlinkedComponentRefused(t *testing.T) {
	root := copyTree(t, filepath.Join("testdata", "kserve-bootstrap", "original"))
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(root, "overlay", "canarybot")); err != nil {
		t.Fatal(err)
	}
	_, err := NewRenderer(nil).Render(context.Background(), diskTree(t, root), testPlan("overlay", kserveTraffic()),
		canary.Desired{Stable: fraudStable})
	if err == nil || !canary.IsTerminal(err) {
		t.Fatalf("err = %v, want a terminal error", err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("Render wrote %d entries through the symlink", len(entries))
	}
}

func TestRenderIsDeterministicAndIdempotent(t *testing.T) {
	ctx := context.Background()
	plan := testPlan("overlay", gatewayTraffic())
	d := canary.Desired{Stable: qwenStable, Canary: qwenCanary, CanaryWeight: 30}
	r := NewRenderer(nil)
	rootA := copyTree(t, filepath.Join("testdata", "gateway-30", "original"))
	rootB := copyTree(t, filepath.Join("testdata", "gateway-30", "original"))
	a, err := r.Render(ctx, diskTree(t, rootA), plan, d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Render(ctx, diskTree(t, rootB), plan, d)
	if err != nil {
		t.Fatal(err)
	}
	expectMatchingTrees(t, b, a)
	again, err := r.Render(ctx, diskTree(t, rootA), plan, d)
	if err != nil {
		t.Fatal(err)
	}
	expectMatchingTrees(t, again, a)
	expectMatchingTrees(t, readTree(t, rootA), readTree(t, rootB))
}

func TestRenderErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		plan    *canary.CanaryPlan
		d       canary.Desired
		wantErr error
		msg     string
	}{
		{"nil plan", nil, canary.Desired{Stable: fraudStable}, canary.ErrInvalidPlan, "nil plan"},
		{"escaping overlay", testPlan("../../etc", kserveTraffic()), canary.Desired{Stable: fraudStable}, ErrOutsideRoot, "leaves the repository root"},
		{"absolute overlay", testPlan("/etc", kserveTraffic()), canary.Desired{Stable: fraudStable}, ErrOutsideRoot, "is absolute"},
		{"no stable", testPlan("overlay", kserveTraffic()), canary.Desired{}, nil, "no stable artifact"},
		{"weight over 100", testPlan("overlay", kserveTraffic()), canary.Desired{Stable: fraudStable, Canary: fraudCanary, CanaryWeight: 101}, nil, "outside 0..100"},
		{"unknown mode", testPlan("overlay", canary.TrafficSpec{Mode: "istio"}), canary.Desired{Stable: fraudStable}, canary.ErrInvalidPlan, "unknown traffic mode"},
		{"missing isvc", testPlan("overlay", canary.TrafficSpec{Mode: canary.ModeKServe, KServe: &canary.KServeTraffic{InferenceService: "nope"}}),
			canary.Desired{Stable: fraudStable}, nil, "no InferenceService named nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := copyTree(t, filepath.Join("testdata", "kserve-initial", "original"))
			before := readTree(t, root)
			_, err := NewRenderer(nil).Render(context.Background(), diskTree(t, root), tc.plan, tc.d)
			t.Logf("err: %v", err)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want one containing %q", err, tc.msg)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.wantErr)
			}
			if !canary.IsTerminal(err) {
				t.Errorf("err = %v, want terminal", err)
			}
			expectMatchingTrees(t, readTree(t, root), before)
		})
	}
}

// TestRenderVerifyCatchesOverride: a human patch applied after the bot's
// component overrides the weight, so the build does not express the intended
// split; Render must say so and leave the tree as it found it, whether the
// component existed before or was being bootstrapped.
func TestRenderVerifyCatchesOverride(t *testing.T) {
	human := `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base
components:
  - canarybot
patches:
  - target:
      kind: InferenceService
      name: fraud-detector
    patch: |-
      - op: add
        path: /spec/predictor/canaryTrafficPercent
        value: 50
`
	for _, original := range []string{"kserve-initial", "kserve-bootstrap"} {
		t.Run(original, func(t *testing.T) {
			root := copyTree(t, filepath.Join("testdata", original, "original"))
			kust := filepath.Join(root, "overlay", "kustomization.yaml")
			if err := os.WriteFile(kust, []byte(human), 0o644); err != nil {
				t.Fatal(err)
			}
			before := readTree(t, root)
			_, err := NewRenderer(nil).Render(context.Background(), diskTree(t, root), testPlan("overlay", kserveTraffic()),
				canary.Desired{Stable: fraudStable, Canary: fraudCanary, CanaryWeight: 10})
			t.Logf("err: %v", err)
			if err == nil || !canary.IsTerminal(err) {
				t.Fatalf("err = %v, want a terminal verification error", err)
			}
			for _, s := range []string{"canaryTrafficPercent", `expected "10", got "50"`} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %v, want it to mention %s", err, s)
				}
			}
			expectMatchingTrees(t, readTree(t, root), before)
			_, statErr := os.Stat(filepath.Join(root, "overlay", ComponentDir))
			if existed := before["overlay/canarybot/kustomization.yaml"] != nil; existed == errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("component dir existed before = %v, stat after = %v", existed, statErr)
			}
		})
	}
}

func TestRenderComponentNotListed(t *testing.T) {
	root := copyTree(t, filepath.Join("testdata", "kserve-bootstrap", "original"))
	kust := filepath.Join(root, "overlay", "kustomization.yaml")
	if err := os.WriteFile(kust, []byte("resources:\n  - ../base\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := NewRenderer(nil).Render(context.Background(), diskTree(t, root), testPlan("overlay", kserveTraffic()),
		canary.Desired{Stable: fraudStable})
	if err == nil || !canary.IsTerminal(err) || !strings.Contains(err.Error(), "does not list the component") {
		t.Fatalf("err = %v, want a terminal error about the missing component", err)
	}
	if _, err := os.Stat(filepath.Join(root, "overlay", "canarybot")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("component dir created despite the error: %v", err)
	}
}
