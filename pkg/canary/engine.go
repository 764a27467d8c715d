package canary

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"reflect"
	"time"
)

// StateDir is where rollout states live in the GitOps repo.
const StateDir = ".canarybot/state"

// StatePath is the repo path of a plan's state file.
func StatePath(plan string) string { return path.Join(StateDir, plan+".yaml") }

// ComponentDir is the bot-owned directory inside an overlay.
func ComponentDir(overlay string) string { return path.Join(overlay, "canarybot") }

// Commands are a person's pending commands for a plan.
type Commands struct {
	// Abort and Pause, when set, are the reason given (with who gave it).
	Abort, Pause string
	Resume       bool
}

// Signals are a person's commands for a plan (ChatOps, CLI). A command
// stays pending until the transition it asks for is committed; the caller
// acknowledges it then (see Report).
type Signals interface {
	Pending(ctx context.Context, plan string) (Commands, error)
}

// Engine carries Decide's decisions out through the ports. Each Tick is
// restart-safe: it reloads plan and state from Git, observes, decides and
// acts idempotently.
type Engine struct {
	// PlanPath is the plan's repo-relative path, when the engine drives one
	// plan file.
	PlanPath string
	// Plans and PlanName, when Plans is set, find the plan by name in each
	// revision's catalog instead (fleet mode). Plans may cache by head.
	Plans     func(ctx context.Context, t Tree) (*Catalog, error)
	PlanName  string
	Repo      Repo
	Renderer  Renderer
	Sync      SyncWaiter
	Gates     GateEvaluator
	Approvals Approvals
	Artifacts ArtifactSource
	// Pipeline, when set, resolves plans whose source is fromPlan from
	// their upstream stages' states in Git: the plan's own repository at
	// the tick's revision, others through Pipeline (pipeline_engine.go).
	// When nil, Artifacts answers for them too (the simulator).
	Pipeline StageReader
	// Signals is optional.
	Signals Signals
	// Stable reads the artifact the overlay serves today; it seeds the state
	// of a plan that has never rolled out.
	Stable func(ctx context.Context, t Tree, plan *CanaryPlan) (Artifact, error)
	Clock  Clock
	Log    *slog.Logger
	// Poll bounds every wait; MinPoll keeps a busy loop from spinning.
	Poll, MinPoll time.Duration
	// OnTick, when set, receives a report of every tick (progress output).
	OnTick func(Report)
	// AfterTick, when set, receives every tick's report and error, failed
	// ticks included, and how long the tick took by Clock (metrics). It
	// runs on the ticking goroutine and must not block.
	AfterTick func(r Report, err error, took time.Duration)
	// Wake, when set, ends a wait early: a webhook saying a new artifact
	// or an approval arrived sends on it.
	Wake <-chan struct{}
}

// Report is what one Tick saw and did.
type Report struct {
	Plan     string
	Decision Decision
	State    *RolloutState
	// Commit is set when the tick pushed a transition.
	Commit CommitResult
	Head   string
	// CanaryPlan is the plan the tick judged.
	CanaryPlan *CanaryPlan
	// Observed is what the tick observed before deciding.
	Observed Observations
	// Current is the rollout's status in Git after the tick, its
	// StepStartedAt the current step's start (see StepStart): State's
	// status, or the one the tick read while a transition waits to be
	// committed (Commit.Pending), when State is the proposed one.
	Current StateStatus
	// SyncWait is, on a tick of a progressing rollout whose deployer
	// finished syncing after the step started (Observed.Sync.SyncedAt),
	// how long after the step's start that was; zero otherwise.
	SyncWait time.Duration
	// PushTook is how long committing and pushing the transition took
	// (Repo.Transact, retries included), when the tick committed one.
	PushTook time.Duration
}

// Run ticks until ctx is done or a terminal error occurs. Retryable errors
// are reported through the logger and retried after Poll.
func (e *Engine) Run(ctx context.Context) error {
	for {
		started := e.Clock.Now()
		r, err := e.Tick(ctx)
		wait := e.Poll
		switch {
		case err != nil && IsTerminal(err):
			return err
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e.Log.Warn("tick failed; retrying", "plan", e.name(), "err", err, "retry_in", e.Poll)
		case r.Decision.Action.Commits():
			wait = 0
		case !r.Decision.Until.IsZero():
			wait = min(max(r.Decision.Until.Sub(e.Clock.Now()), e.MinPoll), e.Poll)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.Wake:
			// However many wake-ups arrive, at most one tick per MinPoll.
			if gap := e.MinPoll - e.Clock.Now().Sub(started); gap > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-e.Clock.After(gap):
				}
			}
		case <-e.Clock.After(wait):
		}
	}
}

// Tick runs one reconcile: load, observe, decide, act.
func (e *Engine) Tick(ctx context.Context) (r Report, err error) {
	if e.AfterTick != nil {
		start := e.Clock.Now()
		defer func() { e.AfterTick(r, err, e.Clock.Now().Sub(start)) }()
	}
	return e.tick(ctx)
}

func (e *Engine) tick(ctx context.Context) (Report, error) {
	t, err := e.Repo.Checkout(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("checkout: %w", err)
	}
	plan, st, err := e.load(ctx, t)
	if err != nil {
		return Report{}, err
	}
	obs, err := e.observe(ctx, t, plan, st)
	if err != nil {
		return Report{}, fmt.Errorf("observe %s: %w", plan.Metadata.Name, err)
	}
	now := e.Clock.Now()
	d := Decide(plan, st, obs, now)
	r := Report{Plan: plan.Metadata.Name, Decision: d, State: st, Head: t.Head}
	switch {
	case d.Action == ActRequestApproval:
		if err := e.requestApproval(ctx, t, plan, st, d, now); err != nil {
			return r, fmt.Errorf("request approval for step %d: %w", d.Step, err)
		}
	case d.Action.Commits():
		if r, err = e.commit(ctx, t, plan, st, obs, d, now); err != nil {
			return r, err
		}
		if r.Commit.NoOp || r.Commit.Pending != "" {
			e.Log.Debug("nothing committed", "plan", r.Plan, "action", d.Action, "reason", r.Decision.Reason)
			break
		}
		e.Log.Info("transition", "plan", r.Plan, "action", d.Action, "step", r.State.Status.StepIndex,
			"weight", r.State.Status.Weight, "commit", short(r.Commit.SHA), "reason", d.Reason)
	}
	r.describe(plan, st, obs)
	if e.OnTick != nil {
		e.OnTick(r)
	}
	return r, nil
}

// load reads the plan and its state from the tree. A plan without a state
// file starts Idle on the artifact the overlay serves today.
func (e *Engine) load(ctx context.Context, t Tree) (*CanaryPlan, *RolloutState, error) {
	plan, err := e.readPlan(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	b, err := ReadRepoFile(t.FS, StatePath(plan.Metadata.Name), MaxPlanBytes)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		stable, err := e.Stable(ctx, t, plan)
		if err != nil {
			return nil, nil, fmt.Errorf("read stable artifact of %s: %w", plan.Metadata.Name, err)
		}
		return plan, NewState(plan.Metadata.Name, stable), nil
	case err != nil:
		return nil, nil, fmt.Errorf("read state of %s: %w", plan.Metadata.Name, err)
	}
	st, err := ParseState(b)
	if err != nil {
		return nil, nil, Terminal(fmt.Errorf("%s: %w", StatePath(plan.Metadata.Name), err))
	}
	return plan, st, nil
}

// ErrPlanNotFound marks a plan that is not (or no longer) in the revision.
var ErrPlanNotFound = errors.New("plan not found")

// readPlan reads the engine's plan from t: by name from the catalog in
// fleet mode, else from PlanPath.
func (e *Engine) readPlan(ctx context.Context, t Tree) (*CanaryPlan, error) {
	if e.Plans == nil {
		return ReadPlan(t, e.PlanPath)
	}
	c, err := e.Plans(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("discover plans at %s: %w", short(t.Head), err)
	}
	if p, ok := c.Lookup(e.PlanName); ok {
		return p, nil
	}
	if p, ok := c.Problem(e.PlanName); ok {
		return nil, Terminal(fmt.Errorf("plan %s at %s is invalid: %w", e.PlanName, p.Where(), p.Err))
	}
	return nil, Terminal(fmt.Errorf("%w: %s at %s", ErrPlanNotFound, e.PlanName, short(t.Head)))
}

// name is the plan's name or path, for messages.
func (e *Engine) name() string {
	if e.Plans != nil {
		return e.PlanName
	}
	return e.PlanPath
}

// ReadPlan reads and parses the plan at repo path p in t. Its errors are
// terminal: retrying cannot fix a missing or invalid plan.
func ReadPlan(t Tree, p string) (*CanaryPlan, error) {
	b, err := ReadRepoFile(t.FS, p, MaxPlanBytes)
	if err != nil {
		return nil, Terminal(fmt.Errorf("read plan %s: %w", p, err))
	}
	var templates GateTemplates
	if plan, err := DecodePlan(b); err == nil && plan.UsesTemplates() {
		if templates, err = ReadTemplates(t); err != nil {
			return nil, Terminal(fmt.Errorf("read gate templates for %s: %w", p, err))
		}
	}
	plan, err := ParsePlanWith(b, templates)
	if err != nil {
		return nil, Terminal(fmt.Errorf("%s: %w", p, err))
	}
	return plan, nil
}

// observe gathers only what Decide needs in the current phase and step.
func (e *Engine) observe(ctx context.Context, t Tree, plan *CanaryPlan, st *RolloutState) (Observations, error) {
	var obs Observations
	s := st.Status
	sha, err := e.Repo.LastCommit(ctx, t.Head, ComponentDir(plan.Spec.Overlay))
	if err != nil {
		return obs, fmt.Errorf("find last overlay commit: %w", err)
	}
	if obs.Sync, err = e.Sync.Observe(ctx, plan.Spec.ArgoCD.Application, sha); err != nil {
		return obs, fmt.Errorf("observe sync of %s: %w", short(sha), err)
	}
	if e.Signals != nil && (s.Phase == PhaseProgressing || s.Phase == PhasePaused) {
		cmds, err := e.Signals.Pending(ctx, plan.Metadata.Name)
		if err != nil {
			return obs, fmt.Errorf("read signals: %w", err)
		}
		obs.Abort, obs.Pause, obs.Resume = cmds.Abort, cmds.Pause, cmds.Resume
	}
	if s.Phase == PhaseProgressing || s.Phase == PhasePaused {
		if obs.Request, err = ReadRequest(t, plan.Metadata.Name); err != nil {
			return obs, err
		}
	}
	if s.Phase != PhaseProgressing || plan.Spec.Concurrency == ConcurrencySupersede {
		if err = e.candidate(ctx, t, plan, &obs); err != nil {
			return obs, err
		}
	}
	if s.Phase == PhaseProgressing {
		if obs.StepLandedAt, err = e.landed(ctx, t, plan); err != nil {
			return obs, err
		}
	}
	if s.Phase != PhaseProgressing || s.StepIndex >= len(plan.Spec.Steps) || !obs.Sync.Ready {
		return obs, nil
	}
	w := Window{Start: StepStart(s, obs), Now: e.Clock.Now(), RolloutStart: s.RolloutStartedAt, Repo: t.FS}
	if b := plan.Spec.BackgroundAnalysis; b != nil {
		if obs.Background, err = e.evaluate(ctx, plan, b.Gates, w); err != nil {
			return obs, err
		}
	}
	step := plan.Spec.Steps[s.StepIndex]
	if step.Pause != nil && step.Pause.UntilApproved {
		if obs.Approved, err = e.Approvals.Approved(ctx, plan.Metadata.Name, s.StepIndex, s.Candidate); err != nil {
			return obs, fmt.Errorf("read approval of step %d: %w", s.StepIndex, err)
		}
	}
	if step.Analysis != nil {
		obs.Gates, err = e.evaluate(ctx, plan, step.Analysis.Gates, w)
	}
	return obs, err
}

// landed is when the newest commit touching the plan's state file (the
// one that moved it to its current step) landed; zero when none did.
func (e *Engine) landed(ctx context.Context, t Tree, plan *CanaryPlan) (time.Time, error) {
	sha, err := e.Repo.LastCommit(ctx, t.Head, StatePath(plan.Metadata.Name))
	if err != nil || sha == "" {
		return time.Time{}, err
	}
	at, err := e.Repo.CommitTime(ctx, sha)
	if err != nil {
		return time.Time{}, fmt.Errorf("read time of %s: %w", short(sha), err)
	}
	return at, nil
}

func (e *Engine) evaluate(ctx context.Context, plan *CanaryPlan, names []string, w Window) ([]GateResult, error) {
	out := make([]GateResult, 0, len(names))
	for _, n := range names {
		spec, ok := plan.Gate(n)
		if !ok {
			return nil, Terminalf("gate %q is not defined", n)
		}
		r, err := e.Gates.Evaluate(ctx, spec, w)
		if err != nil {
			return nil, fmt.Errorf("evaluate gate %s: %w", n, err)
		}
		if r.Window == "" {
			r.Window = w.describe(spec.Type == GateJudge)
		}
		out = append(out, r)
	}
	return out, nil
}

// commit writes the transition. On a newer head (another writer got there
// first) it re-renders only if the rollout there is still where this tick
// saw it; otherwise it does nothing and the next tick decides afresh.
func (e *Engine) commit(ctx context.Context, seen Tree, plan *CanaryPlan, st *RolloutState,
	obs Observations, d Decision, now time.Time) (Report, error) {
	r := Report{Plan: plan.Metadata.Name, Decision: d, State: st, Head: seen.Head}
	pushStart := e.Clock.Now()
	res, err := e.Repo.Transact(ctx, e.transition(seen, plan, st, d, now, &r))
	r.PushTook = e.Clock.Now().Sub(pushStart)
	if err != nil {
		return r, fmt.Errorf("commit %s for %s: %w", d.Action, plan.Metadata.Name, err)
	}
	r.Commit = res
	if res.Pending != "" {
		wait := res.RetryAfter
		if wait <= 0 {
			wait = e.Poll
		}
		r.Decision = Decision{Action: ActWait, Reason: fmt.Sprintf("%s is ready, not committed yet: %s", d.Action, res.Pending),
			Until: now.Add(wait)}
		return r, nil
	}
	if !res.NoOp {
		if err := e.Sync.Refresh(ctx, plan.Spec.ArgoCD.Application); err != nil {
			e.Log.Warn("refresh after push failed; the deployer will poll", "app", plan.Spec.ArgoCD.Application, "err", err)
		}
	}
	return r, nil
}

// describe fills in what a tick of plan, which read st and observed obs,
// reports beside its decision: the rollout's status after it and how long
// the step's sync took.
func (r *Report) describe(plan *CanaryPlan, st *RolloutState, obs Observations) {
	r.CanaryPlan, r.Observed = plan, obs
	r.Current = st.Status
	if r.State != nil && r.Commit.Pending == "" {
		r.Current = r.State.Status
	}
	r.Current.StepStartedAt = StepStart(r.Current, obs)
	s := st.Status
	if s.Phase != PhaseProgressing || !obs.Sync.Ready {
		return
	}
	if start := StepStart(s, obs); obs.Sync.SyncedAt.After(start) {
		r.SyncWait = obs.Sync.SyncedAt.Sub(start)
	}
}

// requestApproval asks for approval of d.Next, offering the change it
// would commit.
func (e *Engine) requestApproval(ctx context.Context, seen Tree, plan *CanaryPlan, st *RolloutState, d Decision, now time.Time) error {
	req := ApprovalRequest{Plan: plan.Metadata.Name, Step: d.Step, Candidate: st.Status.Candidate, Evidence: st.Status.Gates}
	if d.Next != nil {
		req.Next = *d.Next
		r := Report{}
		req.Propose = e.transition(seen, plan, st, *d.Next, now, &r)
	}
	return e.Approvals.Request(ctx, req)
}

// transition returns the TransactFunc that writes decision d: the rendered
// overlay and the next state, in one change. It records the new state in r.
func (e *Engine) transition(seen Tree, plan *CanaryPlan, st *RolloutState, d Decision, now time.Time, r *Report) TransactFunc {
	return func(ctx context.Context, t Tree) (*Change, error) {
		plan2, st2, err := e.load(ctx, t)
		if err != nil {
			return nil, err
		}
		if t.Head != seen.Head && (!reflect.DeepEqual(st2, st) || !reflect.DeepEqual(plan2, plan)) {
			r.Decision = Decision{Action: ActWait, Reason: "another writer moved the rollout; deciding again"}
			return nil, nil
		}
		next := Apply(plan2, st2, d, now)
		files, err := e.Renderer.Render(ctx, t, plan2, DesiredOf(next))
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", plan2.Spec.Overlay, err)
		}
		stateBytes, err := MarshalState(next)
		if err != nil {
			return nil, err
		}
		ch := CommitMessage(plan2, st2, next, d)
		ch.Files = files
		ch.Files[StatePath(plan2.Metadata.Name)] = stateBytes
		ch.Evidence = &Evidence{Plan: plan2, Before: st2, After: next, Decision: d}
		r.State = next
		return &ch, nil
	}
}

// Gate returns the named gate.
func (p *CanaryPlan) Gate(name string) (GateSpec, bool) {
	for _, g := range p.Spec.Gates {
		if g.Name == name {
			return g, true
		}
	}
	return GateSpec{}, false
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
