package statuspage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/canary/canarytest"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/signals"
)

// epoch is when the test world's first rollout starts.
var epoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// planYAML is a plan judged by the real judge on its errors: two steps of
// canary weight, each followed by the judge's analysis.
func planYAML(name string) string {
	return fmt.Sprintf(`apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: %[1]s}
spec:
  model:
    name: %[1]s
    source: {oci: {repository: ghcr.io/acme/%[1]s}}
  traffic: {mode: kserve, kserve: {inferenceService: %[1]s}}
  overlay: overlays/%[1]s
  argocd: {application: %[1]s}
  signals:
    preset: kserve
    stable: {app: %[1]s, role: stable}
    canary: {app: %[1]s, role: canary}
  steps:
  - setWeight: 20
  - analysis: {gates: [judge]}
  - setWeight: 50
  - analysis: {gates: [judge]}
  gates:
  - name: judge
    judge: {metrics: [errors]}
`, name)
}

// brokenPlan fails validation: the page lists it with its errors.
const brokenPlan = `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: broken-model}
spec:
  model: {name: broken-model}
  steps: [{setWeight: 150}]
`

func pinned(name, digit, version string) canary.Artifact {
	return canary.Artifact{URI: "oci://ghcr.io/acme/" + name + "@sha256:" + strings.Repeat(digit, 64), Version: version}
}

// world is a real bare repository whose rollouts real engines drove.
type world struct {
	bare  string
	repo  *gitops.Repo
	clock *canarytest.ManualClock
}

// Plans of the world and how their rollouts end.
const (
	planPromoted    = "fraud-detector"
	planReverted    = "sentiment"
	planProgressing = "churn"
)

// newWorld seeds a repository with three plans and an invalid one, then
// drives real transitions with canary.Engine over gitops and the real
// judge: fraud-detector's v2 is promoted, sentiment's v2 (ten times the
// errors) reverted, and churn's v2 left at step 2 (50%).
func newWorld(t *testing.T) *world {
	t.Helper()
	root := t.TempDir()
	w := &world{bare: filepath.Join(root, "gitops.git"), clock: canarytest.NewManualClock(epoch)}
	git(t, root, "init", "--bare", "--quiet", "-b", "main", w.bare)
	work := filepath.Join(root, "seed")
	git(t, root, "clone", "--quiet", w.bare, work)
	files := map[string]string{
		".canarybot/plans/broken.yaml": brokenPlan,
		"README.md":                    "GitOps repository\n",
	}
	for _, p := range []string{planPromoted, planReverted, planProgressing} {
		files[".canarybot/plans/"+p+".yaml"] = planYAML(p)
		files["overlays/"+p+"/kustomization.yaml"] = "resources: []\n"
	}
	for p, content := range files {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, work, "add", "-A")
	git(t, work, "commit", "--quiet", "-m", "seed")
	git(t, work, "push", "--quiet", "origin", "HEAD:main")

	repo, err := gitops.Open(t.Context(), gitops.Options{URL: w.bare, Dir: filepath.Join(root, "clone"), Clock: w.clock,
		AuthorName: "canarybot", AuthorEmail: "canarybot@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	w.repo = repo
	w.drive(t, planPromoted, canary.PhasePromoted, -1)
	w.drive(t, planReverted, canary.PhaseReverted, -1)
	w.drive(t, planProgressing, canary.PhaseProgressing, 2)
	return w
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+filepath.Join(home, "gc"),
		"GIT_AUTHOR_NAME=Human", "GIT_AUTHOR_EMAIL=h@example.com", "GIT_COMMITTER_NAME=Human", "GIT_COMMITTER_EMAIL=h@example.com",
		"GIT_AUTHOR_DATE=2026-03-02T08:00:00Z", "GIT_COMMITTER_DATE=2026-03-02T08:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// drive ticks plan's engine every 30 seconds of the manual clock until
// the rollout reaches phase (at step, when step ≥ 0).
func (w *world) drive(t *testing.T, plan, phase string, step int) {
	t.Helper()
	f := &fakes{plan: plan}
	eng := &canary.Engine{
		PlanPath: ".canarybot/plans/" + plan + ".yaml", Repo: w.repo, Renderer: f, Sync: f, Approvals: f, Artifacts: f,
		Gates: &gates.SignalGates{SourceFor: func(*canary.SignalsSpec) (signals.Source, error) {
			return traffic{bad: plan == planReverted}, nil
		}},
		Stable: func(context.Context, canary.Tree, *canary.CanaryPlan) (canary.Artifact, error) {
			return pinned(plan, "1", "1.0.0"), nil
		},
		Clock: w.clock, Log: slog.New(slog.DiscardHandler), Poll: 30 * time.Second, MinPoll: time.Second,
	}
	for range 200 {
		r, err := eng.Tick(t.Context())
		if err != nil {
			t.Fatalf("%s: tick: %v", plan, err)
		}
		w.clock.Advance(30 * time.Second)
		if s := r.State.Status; s.Phase == phase && (step < 0 || s.StepIndex == step) && !r.Commit.NoOp && r.Commit.SHA != "" {
			return
		}
	}
	t.Fatalf("%s never reached %s", plan, phase)
}

// fakes are the engine's edges other than Git and the judge: a renderer
// writing one bot-owned file, an Argo CD that has synced, an approver,
// and a registry offering version 2.
type fakes struct{ plan string }

func (f *fakes) Render(_ context.Context, _ canary.Tree, plan *canary.CanaryPlan, d canary.Desired) (map[string][]byte, error) {
	body := fmt.Sprintf("# Code generated by canarybot. DO NOT EDIT.\nstable: %s\ncanary: %s\nweight: %d\n", d.Stable, d.Canary, d.CanaryWeight)
	return map[string][]byte{canary.ComponentDir(plan.Spec.Overlay) + "/split.yaml": []byte(body)}, nil
}
func (f *fakes) Refresh(context.Context, string) error { return nil }
func (f *fakes) Observe(context.Context, string, string) (canary.SyncObservation, error) {
	return canary.SyncObservation{Ready: true}, nil
}
func (f *fakes) Approved(context.Context, string, int, canary.Artifact) (bool, error) {
	return true, nil
}
func (f *fakes) Request(context.Context, canary.ApprovalRequest) error { return nil }
func (f *fakes) Latest(context.Context, *canary.CanaryPlan) (*canary.Artifact, error) {
	a := pinned(f.plan, "2", "2.0.0")
	return &a, nil
}

// traffic is a steady signals source: stable serves 900 requests per
// 10s with one error; the canary 100, with one error every 90s (the same
// rate), or one every interval (nine times the rate) when bad.
type traffic struct{ bad bool }

func (tr traffic) Read(_ context.Context, start, end time.Time, step time.Duration) (*signals.Series, error) {
	s := &signals.Series{}
	for at := start.Truncate(step); at.Before(end); at = at.Add(step) {
		iv := signals.Interval{Start: at, End: at.Add(step), Requests: [2]float64{900, 100}, Errors: [2]float64{1, 0},
			KVCache: signals.NaN2(), QueueDepth: signals.NaN2(), GPUMemoryUsed: signals.NaN2(), GPUTempC: signals.NaN2(),
			ECCUncorrected: signals.NaN2()}
		if tr.bad || at.Unix()%90 == 0 {
			iv.Errors[signals.Canary] = 1
		}
		s.Intervals = append(s.Intervals, iv)
	}
	return s, nil
}
