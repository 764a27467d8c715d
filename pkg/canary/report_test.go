package canary

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// afterTicks records what Engine.AfterTick receives.
type afterTicks struct {
	reports []Report
	errs    []error
	took    []time.Duration
}

func (a *afterTicks) record(r Report, err error, took time.Duration) {
	a.reports, a.errs, a.took = append(a.reports, r), append(a.errs, err), append(a.took, took)
}

// A tick that commits reports the rollout where the commit put it, the
// plan it judged and how long the push took; AfterTick sees it, and sees
// failed ticks too.
func TestReportAfterACommit(t *testing.T) {
	w := newWorld(t, nil)
	var got afterTicks
	w.engine.AfterTick = got.record
	clock := &stopClock{now: t0}
	w.engine.Clock = clock
	transact := w.repo.TransactFn
	w.repo.TransactFn = func(ctx context.Context, fn TransactFunc) (CommitResult, error) {
		clock.now = clock.now.Add(3 * time.Second) // the push takes 3 s
		return transact(ctx, fn)
	}
	r, err := w.engine.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := r.Current
	if c.Phase != PhaseProgressing || c.StepIndex != 0 || c.Weight != 10 || !c.StepStartedAt.Equal(t0) {
		t.Errorf("Current = %+v, want Progressing at step 0, 10%%, started %s", c, t0)
	}
	if r.CanaryPlan == nil || r.CanaryPlan.Metadata.Name != "qwen" || r.PushTook != 3*time.Second || r.SyncWait != 0 {
		t.Errorf("plan %v, push took %s, sync wait %s", r.CanaryPlan, r.PushTook, r.SyncWait)
	}
	if len(got.reports) != 1 || got.errs[0] != nil || got.took[0] != 3*time.Second || got.reports[0].Commit.SHA != r.Commit.SHA {
		t.Errorf("AfterTick got %+v", got)
	}

	w.repo.CheckoutFn = func(context.Context) (Tree, error) { return Tree{}, errors.New("fetch: connection refused") }
	if _, err := w.engine.Tick(context.Background()); err == nil {
		t.Fatal("Tick succeeded without a checkout")
	}
	if len(got.errs) != 2 || got.errs[1] == nil {
		t.Errorf("AfterTick did not see the failed tick: %v", got.errs)
	}
}

// While a transition waits for review (Commit.Pending), State is the
// proposed rollout and Current the one in Git.
func TestReportWhileATransitionIsPending(t *testing.T) {
	w := newWorld(t, nil)
	w.repo.TransactFn = func(ctx context.Context, fn TransactFunc) (CommitResult, error) {
		if _, err := fn(ctx, Tree{Head: "head1", FS: os.DirFS(w.dir)}); err != nil {
			return CommitResult{}, err
		}
		return CommitResult{Pending: "PR #7 waits for a reviewer"}, nil
	}
	r, err := w.engine.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.State.Status.Phase != PhaseProgressing || r.Current.Phase != PhaseIdle {
		t.Errorf("State %s, Current %s: want the proposal Progressing, Git still Idle", r.State.Status.Phase, r.Current.Phase)
	}
}

// The step starts when its commit landed (a merge after the bot decided);
// the sync wait runs from then to Argo CD's finishedAt, and the gates
// evaluated are reported.
func TestReportStepStartAndSyncWait(t *testing.T) {
	plan := mustPlan(t)
	st := Apply(plan, NewState("qwen", v1), Decision{Action: ActStart, Candidate: v2, Weight: 10}, t0)
	st = Apply(plan, st, Decision{Action: ActAdvance, Step: 1, Weight: 10}, t0.Add(time.Minute))
	w := newWorld(t, st)
	w.repo.CommitTimeFn = func() (time.Time, error) { return t0.Add(2 * time.Minute), nil }
	w.sync.ObserveFn = func(context.Context, string, string) (SyncObservation, error) {
		return SyncObservation{Ready: true, Revision: "overlay-sha", SyncedAt: t0.Add(3 * time.Minute)}, nil
	}
	w.gates.EvaluateFn = func(_ context.Context, g GateSpec, _ Window) (GateResult, error) {
		return GateResult{Gate: g.Name, Verdict: VerdictRunning}, nil
	}
	w.engine.Clock = &stopClock{now: t0.Add(5 * time.Minute)}
	r, err := w.engine.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Decision.Action != ActWait || r.Current.StepIndex != 1 || !r.Current.StepStartedAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("decision %s, Current %+v: want a wait in step 1, started when its commit landed", r.Decision.Action, r.Current)
	}
	if r.SyncWait != time.Minute {
		t.Errorf("SyncWait = %s, want 1m (landed 12:02, synced 12:03)", r.SyncWait)
	}
	if len(r.Observed.Gates) != 1 || r.Observed.Gates[0].Verdict != VerdictRunning {
		t.Errorf("Observed.Gates = %+v", r.Observed.Gates)
	}
}
