package canary

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary/canarytest"
)

// Fakes with one Fn field per port method, as Kargo's gitprovider.Fake.

type fakeRepo struct {
	CheckoutFn   func(ctx context.Context) (Tree, error)
	TransactFn   func(ctx context.Context, fn TransactFunc) (CommitResult, error)
	LastCommitFn func(ctx context.Context, head string, paths ...string) (string, error)
	CommitTimeFn func() (time.Time, error)
}

func (f *fakeRepo) Checkout(ctx context.Context) (Tree, error) { return f.CheckoutFn(ctx) }
func (f *fakeRepo) Transact(ctx context.Context, fn TransactFunc) (CommitResult, error) {
	return f.TransactFn(ctx, fn)
}
func (f *fakeRepo) LastCommit(ctx context.Context, head string, paths ...string) (string, error) {
	return f.LastCommitFn(ctx, head, paths...)
}
func (f *fakeRepo) Contains(context.Context, string, string) (bool, error) { return true, nil }
func (f *fakeRepo) CommitTime(context.Context, string) (time.Time, error) {
	if f.CommitTimeFn == nil {
		return time.Time{}, nil
	}
	return f.CommitTimeFn()
}

type fakeRenderer struct {
	RenderFn func(ctx context.Context, t Tree, plan *CanaryPlan, d Desired) (map[string][]byte, error)
}

func (f *fakeRenderer) Render(ctx context.Context, t Tree, p *CanaryPlan, d Desired) (map[string][]byte, error) {
	return f.RenderFn(ctx, t, p, d)
}

type fakeSync struct {
	ObserveFn func(ctx context.Context, app, sha string) (SyncObservation, error)
	refreshes int
}

func (f *fakeSync) Refresh(context.Context, string) error { f.refreshes++; return nil }
func (f *fakeSync) Observe(ctx context.Context, app, sha string) (SyncObservation, error) {
	return f.ObserveFn(ctx, app, sha)
}

type fakeGates struct {
	EvaluateFn func(ctx context.Context, g GateSpec, w Window) (GateResult, error)
}

func (f *fakeGates) Evaluate(ctx context.Context, g GateSpec, w Window) (GateResult, error) {
	return f.EvaluateFn(ctx, g, w)
}

type fakeApprovals struct {
	ApprovedFn func(ctx context.Context, plan string, step int, c Artifact) (bool, error)
	requests   []int
}

func (f *fakeApprovals) Approved(ctx context.Context, plan string, step int, c Artifact) (bool, error) {
	return f.ApprovedFn(ctx, plan, step, c)
}
func (f *fakeApprovals) Request(_ context.Context, req ApprovalRequest) error {
	f.requests = append(f.requests, req.Step)
	return nil
}

type fakeArtifacts struct {
	LatestFn func(ctx context.Context, plan *CanaryPlan) (*Artifact, error)
}

func (f *fakeArtifacts) Latest(ctx context.Context, p *CanaryPlan) (*Artifact, error) {
	return f.LatestFn(ctx, p)
}

type stopClock struct{ now time.Time }

func (c *stopClock) Now() time.Time                       { return c.now }
func (c *stopClock) After(time.Duration) <-chan time.Time { return make(chan time.Time) }

// world is an engine over fakes and a tree on disk holding plan and state.
type world struct {
	t       *testing.T
	dir     string
	engine  *Engine
	repo    *fakeRepo
	sync    *fakeSync
	gates   *fakeGates
	approve *fakeApprovals
	commits []*Change
}

func newWorld(t *testing.T, st *RolloutState) *world {
	w := &world{t: t, dir: t.TempDir()}
	w.write("plans/qwen.yaml", []byte(strings.Replace(goodPlan, "name: fraud-detector\nspec", "name: qwen\nspec", 1)))
	if st != nil {
		b, err := MarshalState(st)
		if err != nil {
			t.Fatal(err)
		}
		w.write(StatePath("qwen"), b)
	}
	tree := Tree{Head: "head1", FS: os.DirFS(w.dir)}
	w.repo = &fakeRepo{
		CheckoutFn: func(context.Context) (Tree, error) { return tree, nil },
		TransactFn: func(ctx context.Context, fn TransactFunc) (CommitResult, error) {
			ch, err := fn(ctx, tree)
			if err != nil || ch == nil {
				return CommitResult{NoOp: true, SHA: tree.Head}, err
			}
			w.commits = append(w.commits, ch)
			return CommitResult{SHA: "commit" + string(rune('0'+len(w.commits))), Attempts: 1}, nil
		},
		LastCommitFn: func(context.Context, string, ...string) (string, error) { return "overlay-sha", nil },
	}
	w.sync = &fakeSync{ObserveFn: func(context.Context, string, string) (SyncObservation, error) {
		return SyncObservation{Ready: true, Revision: "overlay-sha"}, nil
	}}
	w.gates = &fakeGates{}
	w.approve = &fakeApprovals{ApprovedFn: func(context.Context, string, int, Artifact) (bool, error) { return false, nil }}
	w.engine = &Engine{
		PlanPath: "plans/qwen.yaml", Repo: w.repo, Sync: w.sync, Gates: w.gates, Approvals: w.approve,
		Renderer: &fakeRenderer{RenderFn: func(_ context.Context, _ Tree, p *CanaryPlan, d Desired) (map[string][]byte, error) {
			return map[string][]byte{ComponentDir(p.Spec.Overlay) + "/patch.yaml": []byte(d.Canary + " " + string(rune('0'+d.CanaryWeight/10)))}, nil
		}},
		Artifacts: &fakeArtifacts{LatestFn: func(context.Context, *CanaryPlan) (*Artifact, error) { return &v2, nil }},
		Stable:    func(context.Context, Tree, *CanaryPlan) (Artifact, error) { return v1, nil },
		Clock:     &stopClock{now: t0}, Log: slog.New(slog.DiscardHandler), Poll: time.Second,
	}
	return w
}

func (w *world) write(rel string, b []byte) {
	p := filepath.Join(w.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func TestEngineStartsFromNoStateAndCommitsOnce(t *testing.T) {
	w := newWorld(t, nil)
	r, err := w.engine.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Decision.Action != ActStart || len(w.commits) != 1 || w.sync.refreshes != 1 {
		t.Fatalf("decision %s, %d commits, %d refreshes", r.Decision.Action, len(w.commits), w.sync.refreshes)
	}
	ch := w.commits[0]
	st, err := ParseState(ch.Files[StatePath("qwen")])
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.Phase != PhaseProgressing || st.Status.Candidate != v2 || st.Status.Stable != v1 || st.Status.Weight != 10 {
		t.Errorf("committed state: %+v", st.Status)
	}
	if _, ok := ch.Files["manifests/overlays/fraud-detector/canarybot/patch.yaml"]; !ok {
		t.Errorf("overlay patch not in the same commit: %v", keys(ch.Files))
	}
	want := map[string]string{TrailerPlan: "qwen", TrailerStep: "0", TrailerAction: "start", TrailerArtifact: v2.URI}
	for _, tr := range ch.Trailers {
		if want[tr.Key] == tr.Value {
			delete(want, tr.Key)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing trailers %v in %v", want, ch.Trailers)
	}
}

// Another writer moved the rollout between checkout and push: the engine
// must not commit its stale decision on top.
func TestEngineYieldsToAnotherWriter(t *testing.T) {
	st := Apply(testPlan(), NewState("qwen", v1), Decision{Action: ActStart, Candidate: v2, Weight: 10}, t0)
	st.Status.StepsHash = StepsHash(mustPlan(t).Spec.Steps)
	w := newWorld(t, st)
	moved := Apply(mustPlan(t), st, Decision{Action: ActAdvance, Step: 1, Weight: 10}, t0)
	w.repo.TransactFn = func(ctx context.Context, fn TransactFunc) (CommitResult, error) {
		b, _ := MarshalState(moved)
		w.write(StatePath("qwen"), b)
		ch, err := fn(ctx, Tree{Head: "head2", FS: os.DirFS(w.dir)})
		if ch != nil {
			w.commits = append(w.commits, ch)
		}
		return CommitResult{NoOp: ch == nil}, err
	}
	r, err := w.engine.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(w.commits) != 0 || r.Decision.Action != ActWait || !strings.Contains(r.Decision.Reason, "another writer") {
		t.Errorf("commits %d, decision %+v", len(w.commits), r.Decision)
	}
}

func TestEngineAnalysisWindowStartsAtTheStep(t *testing.T) {
	plan := mustPlan(t)
	st := Apply(plan, NewState("qwen", v1), Decision{Action: ActStart, Candidate: v2, Weight: 10}, t0)
	st = Apply(plan, st, Decision{Action: ActAdvance, Step: 1, Weight: 10}, t0.Add(time.Minute))
	w := newWorld(t, st)
	var window Window
	w.gates.EvaluateFn = func(_ context.Context, g GateSpec, win Window) (GateResult, error) {
		window = win
		return GateResult{Gate: g.Name, Verdict: VerdictFailed, Reason: "error ratio 0.2"}, nil
	}
	w.engine.Clock = &stopClock{now: t0.Add(5 * time.Minute)}
	r, err := w.engine.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !window.Start.Equal(t0.Add(time.Minute)) || !window.Now.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("window = %+v", window)
	}
	// Gates that read files of their own (goldenSet) get the revision the
	// plan was read from.
	if window.Repo == nil {
		t.Error("window carries no repo revision")
	} else if _, err := fs.Stat(window.Repo, "plans/qwen.yaml"); err != nil {
		t.Errorf("window's repo lacks the plan: %v", err)
	}
	if r.Decision.Action != ActRevert || r.Decision.Gate != "errors" || len(w.commits) != 1 {
		t.Fatalf("decision %+v, %d commits", r.Decision, len(w.commits))
	}
	after, _ := ParseState(w.commits[0].Files[StatePath("qwen")])
	if !after.Status.IsFailed(v2.URI) || len(after.Status.Gates) != 1 || after.Status.Gates[0].Reason != "error ratio 0.2" {
		t.Errorf("revert state lacks the evidence: %+v", after.Status)
	}
}

func TestEngineRequestsApprovalWithoutCommitting(t *testing.T) {
	plan := mustPlan(t)
	plan.Spec.Steps[2] = Step{Pause: &PauseStep{UntilApproved: true}}
	st := Apply(plan, NewState("qwen", v1), Decision{Action: ActStart, Candidate: v2, Weight: 10}, t0)
	st = Apply(plan, st, Decision{Action: ActAdvance, Step: 2, Weight: 10}, t0)
	w := newWorld(t, st)
	w.write("plans/qwen.yaml", []byte(strings.Replace(strings.Replace(goodPlan, "name: fraud-detector\nspec", "name: qwen\nspec", 1),
		"- pause: {duration: 2m}", "- pause: {untilApproved: true}", 1)))
	r, err := w.engine.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Decision.Action != ActRequestApproval || len(w.commits) != 0 || len(w.approve.requests) != 1 || w.approve.requests[0] != 2 {
		t.Errorf("decision %s, commits %d, requests %v", r.Decision.Action, len(w.commits), w.approve.requests)
	}
}

func TestEngineInvalidPlanIsTerminal(t *testing.T) {
	w := newWorld(t, nil)
	w.write("plans/qwen.yaml", []byte("apiVersion: canarybot.dev/v1alpha1\nkind: CanaryPlan\nspec: {bogus: 1}\n"))
	_, err := w.engine.Tick(context.Background())
	if !IsTerminal(err) || !strings.Contains(err.Error(), "spec.bogus: unknown field") {
		t.Errorf("err = %v, want a terminal error naming spec.bogus", err)
	}
	if err := w.engine.Run(context.Background()); !IsTerminal(err) {
		t.Errorf("Run kept going on a terminal error: %v", err)
	}
}

func mustPlan(t *testing.T) *CanaryPlan {
	t.Helper()
	p, err := ParsePlan([]byte(strings.Replace(goodPlan, "name: fraud-detector\nspec", "name: qwen\nspec", 1)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A wake (a webhook) ends the engine's wait at once.
func TestEngineWakeEndsTheWait(t *testing.T) {
	w := newWorld(t, nil)
	w.engine.Artifacts = &fakeArtifacts{LatestFn: func(context.Context, *CanaryPlan) (*Artifact, error) { return nil, nil }}
	wake := make(chan struct{})
	w.engine.Wake = wake
	ticks := make(chan Report, 10)
	w.engine.OnTick = func(r Report) { ticks <- r }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.engine.Run(ctx) }()
	if r := <-ticks; r.Decision.Action != ActWait {
		t.Fatalf("first tick: %s", r.Decision.Action)
	}
	wake <- struct{}{} // stopClock never fires: only the wake can end the wait
	select {
	case <-ticks:
	case <-time.After(30 * time.Second):
		t.Fatal("the wake did not trigger a tick")
	}
}

// A change that is ready but cannot land yet (a PR waiting for a
// reviewer, a merge blocked by checks) is waiting, not failing: Tick
// returns no error, says why, and when to look again; nothing is logged as
// a transition.
func TestEnginePendingCommitIsAWaitNotAnError(t *testing.T) {
	w := newWorld(t, nil)
	var logs strings.Builder
	w.engine.Log = slog.New(slog.NewTextHandler(&logs, nil))
	w.repo.TransactFn = func(ctx context.Context, fn TransactFunc) (CommitResult, error) {
		if _, err := fn(ctx, Tree{Head: "head1", FS: os.DirFS(w.dir)}); err != nil {
			return CommitResult{}, err
		}
		return CommitResult{Pending: "merge of PR #7 is blocked: required check pending", RetryAfter: 45 * time.Second}, nil
	}
	r, err := w.engine.Tick(context.Background())
	if err != nil {
		t.Fatalf("Tick: %v", err)
	}
	d := r.Decision
	if d.Action != ActWait || !strings.Contains(d.Reason, "start is ready, not committed yet: merge of PR #7 is blocked") ||
		!d.Until.Equal(t0.Add(45*time.Second)) {
		t.Errorf("decision %+v", d)
	}
	if w.sync.refreshes != 0 || strings.Contains(logs.String(), "transition") {
		t.Errorf("a pending change was treated as committed: %d refreshes, logs:\n%s", w.sync.refreshes, logs.String())
	}
}

// A burst of wake-ups starts at most one tick per MinPoll.
func TestEngineWakeUpsAreRateLimited(t *testing.T) {
	w := newWorld(t, nil)
	w.engine.Artifacts = &fakeArtifacts{LatestFn: func(context.Context, *CanaryPlan) (*Artifact, error) { return nil, nil }}
	clock := canarytest.NewManualClock(t0)
	w.engine.Clock, w.engine.MinPoll, w.engine.Poll = clock, time.Minute, time.Hour
	wake := make(chan struct{}, 1)
	w.engine.Wake = wake
	ticks := make(chan Report, 100)
	w.engine.OnTick = func(r Report) { ticks <- r }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.engine.Run(ctx) }()
	<-ticks
	burst := func() {
		for range 50 {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}
	for round := range 3 {
		burst()
		waitTimers(t, clock, time.Minute)
		select {
		case <-ticks:
			t.Fatalf("round %d: a tick before MinPoll passed", round)
		case <-time.After(100 * time.Millisecond):
		}
		clock.Advance(time.Minute)
		select {
		case <-ticks:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: no tick after MinPoll", round)
		}
	}
}

// waitTimers waits until the engine waits on a timer due within d.
func waitTimers(t *testing.T, c *canarytest.ManualClock, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if c.Waiting(d) > 0 {
			return
		}
	}
	t.Fatal("the engine never waited out MinPoll")
}
