package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

// status shows what the bot drives: every plan it found, every invalid
// one with its errors, and, for each rollout in Git, the plan behind it,
// or that the plan is gone and the rollout held where it is.
func TestStatusShowsPlansAndDeletedOnes(t *testing.T) {
	bare := retryRemote(t, false) // plans/fraud.yaml: outside .canarybot/plans, so not discovered
	work := filepath.Join(t.TempDir(), "human")
	gitRun(t, filepath.Dir(work), "clone", "--quiet", bare, work)
	held := canary.NewState("retired", retryV1)
	held.Status.Phase, held.Status.Candidate, held.Status.StepIndex, held.Status.Weight = canary.PhaseProgressing, retryV2, 1, 10
	heldYAML, err := canary.MarshalState(held)
	if err != nil {
		t.Fatal(err)
	}
	named := func(name string) string {
		return strings.NewReplacer("name: fraud-detector", "name: "+name, "overlays/fraud-detector", "overlays/"+name,
			"application: fraud-detector", "application: "+name).Replace(retryPlan)
	}
	for p, content := range map[string]string{
		".canarybot/plans/fraud.yaml": named("fraud"),
		".canarybot/plans/bad.yaml":   strings.Replace(named("bad"), "setWeight: 10", "setWeight: ten", 1),
		canary.StatePath("retired"):   string(heldYAML),
	} {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitRun(t, work, "add", "-A")
	gitRun(t, work, "commit", "--quiet", "-m", "plans")
	gitRun(t, work, "push", "--quiet", "origin", "HEAD:main")

	out, stderr, err := runBinary(t, nil, "status", "--repo", bare)
	if err != nil {
		t.Fatalf("status: %v\n%s%s", err, out, stderr)
	}
	for _, want := range []string{
		"plans under .canarybot/plans at ",
		": 1 valid, 1 invalid",
		`invalid:   .canarybot/plans/bad.yaml: not driven: invalid plan: spec.steps[0].setWeight: want an integer, got "ten"`,
		"waiting:   fraud (.canarybot/plans/fraud.yaml): no rollout yet",
		"retired: Progressing at step 1, canary weight 10%",
		"plan:      deleted: no longer driven; the rollout is held where it is",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
