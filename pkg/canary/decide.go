package canary

import (
	"fmt"
	"strings"
	"time"
)

// Action is what a Decision asks the engine to do.
type Action string

// Actions. Start, Advance, Hold, Promote and Revert each produce one commit;
// Wait and RequestApproval produce none.
const (
	ActWait            Action = "wait"
	ActStart           Action = "start"
	ActAdvance         Action = "advance"
	ActRequestApproval Action = "request-approval"
	ActHold            Action = "hold"
	ActPromote         Action = "promote"
	ActRevert          Action = "revert"
)

// Commits reports whether the action is a transition recorded in Git.
func (a Action) Commits() bool {
	switch a {
	case ActStart, ActAdvance, ActHold, ActPromote, ActRevert:
		return true
	}
	return false
}

// Observations is everything Decide knows about the world, gathered by the
// engine's adapters before deciding.
type Observations struct {
	// Candidate is the newest pinned artifact the registry offers, or nil.
	Candidate *Artifact
	// Upstream, for a plan whose source is fromPlan, is its upstream
	// stage's offer; when it has no candidate, its reason (and when to
	// look again) is the wait's.
	Upstream *UpstreamOffer
	// Sync is the deployer's view of the last commit that changed the overlay.
	Sync SyncObservation
	// Gates holds results for the current analysis step's gates.
	Gates []GateResult
	// Background holds results of spec.backgroundAnalysis gates.
	Background []GateResult
	// Approved: a reviewer approved the current pause-until-approved step.
	Approved bool
	// Abort, when set, is a person's reason to abort the rollout.
	Abort string
	// Resume: a person resumed a held rollout.
	Resume bool
	// Pause, when set, is a person's reason to hold the rollout where it is.
	Pause string
	// Promote, when set, is a person's reason to let the rollout past the
	// pause or approval step it is at.
	Promote string
	// Request is the plan's request file (from the CLI), if any; Decide
	// acts on it while it is pending.
	Request *RolloutRequest
	// StepLandedAt is when the commit that moved the rollout to its current
	// step landed on the branch (its committer time). A step starts at the
	// later of that and the state's StepStartedAt: a transition proposed in
	// a pull request and merged hours later, exactly as approved, starts
	// when it is merged.
	StepLandedAt time.Time
}

// Decision is the outcome of Decide.
type Decision struct {
	Action Action
	// Step and Weight are the step to move to and its canary weight.
	Step   int
	Weight int
	// Candidate is the artifact a Start rolls out.
	Candidate Artifact
	// Until is when to look again after a Wait; zero means "poll".
	Until  time.Time
	Reason string
	// Gate names the gate that decided, if one did.
	Gate  string
	Gates []GateResult
	// Next, on RequestApproval only, is the transition approval lets
	// through, so that it can be proposed for review before it happens.
	Next *Decision
	// Request is the id of the person's request this decision carries
	// out; Apply records it as the state's lastRequest.
	Request string
}

// Decide is canarybot's whole policy: a pure function of the plan, the state
// read from Git, what the adapters observed, and the time.
func Decide(plan *CanaryPlan, st *RolloutState, obs Observations, now time.Time) Decision {
	s := st.Status
	s.StepStartedAt = StepStart(s, obs)
	req := obs.Request
	if !req.Pending(s) {
		return decide(plan, s, obs, now)
	}
	d := decide(plan, s, req.observe(obs), now)
	if req.carriedOut(d) {
		d.Request = req.Spec.ID
	}
	return d
}

func decide(plan *CanaryPlan, s StateStatus, obs Observations, now time.Time) Decision {
	switch s.Phase {
	case PhaseProgressing:
		return decideProgressing(plan, s, obs, now)
	case PhasePaused:
		return decidePaused(plan, s, obs)
	default: // Idle, Promoted, Reverted
		return decideIdle(plan, s, obs, now)
	}
}

// SyncPoll is how soon a plan waiting for Argo CD looks again: a sync
// takes seconds, and nothing else wakes the plan when it ends (the
// engine and the fleet keep it within their MinPoll and Poll).
const SyncPoll = 5 * time.Second

// StepStart is when the current step started: the later of the state's
// StepStartedAt and when the step's commit landed.
func StepStart(s StateStatus, obs Observations) time.Time {
	if obs.StepLandedAt.After(s.StepStartedAt) {
		return obs.StepLandedAt.UTC()
	}
	return s.StepStartedAt
}

func decideIdle(plan *CanaryPlan, s StateStatus, obs Observations, now time.Time) Decision {
	c := obs.Candidate
	switch {
	case c == nil && obs.Upstream != nil:
		return Decision{Action: ActWait, Reason: obs.Upstream.Reason, Until: obs.Upstream.Until}
	case c == nil:
		return wait("no new artifact")
	case c.Same(s.Stable):
		return wait(fmt.Sprintf("%s is already stable", c.URI))
	case s.IsFailed(c.URI):
		return wait(fmt.Sprintf("%s was reverted before; not proposing it again", c.URI))
	case movedTag(*c, s) != "":
		return wait(movedTag(*c, s))
	case !obs.Sync.Ready:
		d := wait("waiting for the last transition to sync: " + obs.Sync.Reason)
		d.Until = now.Add(SyncPoll)
		return d
	}
	return start(plan, *c, fmt.Sprintf("new artifact %s", label(*c)))
}

func decidePaused(plan *CanaryPlan, s StateStatus, obs Observations) Decision {
	switch {
	case obs.Abort != "":
		return revert("aborted: "+obs.Abort, "")
	case obs.Resume:
		return advance(plan, s.StepIndex, "resumed by a person")
	}
	return wait("held: " + s.Reason)
}

func decideProgressing(plan *CanaryPlan, s StateStatus, obs Observations, now time.Time) Decision {
	steps := plan.Spec.Steps
	if obs.Abort != "" {
		return revert("aborted: "+obs.Abort, "")
	}
	if obs.Pause != "" {
		return Decision{Action: ActHold, Step: s.StepIndex, Weight: s.Weight, Reason: "paused: " + obs.Pause}
	}
	if s.StepsHash != StepsHash(steps) || s.StepIndex >= len(steps) {
		d := start(plan, s.Candidate, "plan steps changed mid-rollout; restarting from step 0")
		d.Action = ActAdvance
		return d
	}
	if why := templatesChanged(plan, s); why != "" {
		d := start(plan, s.Candidate, why+" changed mid-rollout; restarting from step 0")
		d.Action = ActAdvance
		return d
	}
	if c := obs.Candidate; plan.Spec.Concurrency == ConcurrencySupersede && c != nil &&
		c.URI != s.Candidate.URI && c.URI != s.Stable.URI && !s.IsFailed(c.URI) && movedTag(*c, s) == "" {
		return start(plan, *c, fmt.Sprintf("superseded by %s", label(*c)))
	}
	if d, ok := decideSync(plan, s, obs.Sync, now); !ok {
		return d
	}
	if d, ok := decideBackground(plan, s, obs.Background); !ok {
		return d
	}
	step := steps[s.StepIndex]
	switch {
	case step.SetWeight != nil:
		return next(plan, s.StepIndex, fmt.Sprintf("weight %d%% synced", s.Weight))
	case step.SetHeaderRoute != nil || step.SetMirrorRoute != nil:
		return next(plan, s.StepIndex, step.DescribeRoute()+": synced")
	case step.Pause != nil && obs.Promote != "":
		return next(plan, s.StepIndex, "promoted by "+obs.Promote)
	case step.Pause != nil && step.Pause.UntilApproved:
		if obs.Approved {
			return next(plan, s.StepIndex, "approved")
		}
		n := next(plan, s.StepIndex, "approved")
		return Decision{Action: ActRequestApproval, Step: s.StepIndex, Weight: s.Weight, Next: &n,
			Reason: fmt.Sprintf("step %d waits for a reviewer's approval", s.StepIndex)}
	case step.Pause != nil:
		until := s.StepStartedAt.Add(step.Pause.Duration.Duration)
		if now.Before(until) {
			return Decision{Action: ActWait, Until: until, Step: s.StepIndex, Weight: s.Weight,
				Reason: fmt.Sprintf("pausing until %s", until.UTC().Format(time.RFC3339))}
		}
		return next(plan, s.StepIndex, fmt.Sprintf("paused %s", step.Pause.Duration.Duration))
	default:
		return decideAnalysis(plan, s, step.Analysis.Gates, obs.Gates)
	}
}

// decideSync returns ok when the last overlay commit is synced and healthy.
func decideSync(plan *CanaryPlan, s StateStatus, sync SyncObservation, now time.Time) (Decision, bool) {
	if sync.Ready {
		return Decision{}, true
	}
	policy := plan.Spec.Rollback.OnSyncFailure
	if sync.Failed {
		return onBad(plan, s, policy, "sync failed: "+sync.Reason, ""), false
	}
	deadline := s.StepStartedAt.Add(plan.Spec.ArgoCD.SyncTimeout.Or(DefaultSyncTimeout))
	if !now.Before(deadline) {
		return onBad(plan, s, policy, fmt.Sprintf("not synced within %s: %s",
			plan.Spec.ArgoCD.SyncTimeout.Or(DefaultSyncTimeout), sync.Reason), ""), false
	}
	until := now.Add(SyncPoll)
	if deadline.Before(until) {
		until = deadline
	}
	return Decision{Action: ActWait, Until: until, Step: s.StepIndex, Weight: s.Weight,
		Reason: "waiting for Argo CD: " + sync.Reason}, false
}

func decideAnalysis(plan *CanaryPlan, s StateStatus, names []string, results []GateResult) Decision {
	v, gate, reason, nextAt := Combine(names, results)
	var d Decision
	switch v {
	case VerdictSuccessful:
		d = next(plan, s.StepIndex, "gates passed: "+strings.Join(names, ", "))
	case VerdictFailed:
		d = onBad(plan, s, plan.Spec.Rollback.OnFailure, fmt.Sprintf("gate %s failed: %s", gate, reason), gate)
	case VerdictInconclusive:
		d = onBad(plan, s, plan.Spec.Rollback.OnInconclusive, fmt.Sprintf("gate %s inconclusive: %s", gate, reason), gate)
	case VerdictError:
		d = onBad(plan, s, plan.Spec.Rollback.OnError, fmt.Sprintf("gate %s errored: %s", gate, reason), gate)
	default:
		d = Decision{Action: ActWait, Until: nextAt, Step: s.StepIndex, Weight: s.Weight,
			Reason: "analysis running: " + reason}
	}
	d.Gates = results
	return d
}

// decideBackground returns ok unless a background gate failed. Running,
// Inconclusive and Error background gates neither hold nor advance: the
// step's own gates decide that.
func decideBackground(plan *CanaryPlan, s StateStatus, results []GateResult) (Decision, bool) {
	for _, r := range results {
		if r.Verdict == VerdictFailed {
			d := onBad(plan, s, plan.Spec.Rollback.OnFailure, fmt.Sprintf("gate %s failed: %s", r.Gate, r.Reason), r.Gate)
			d.Gates = results
			return d, false
		}
	}
	return Decision{}, true
}

// Combine folds the gates of one analysis step into one verdict, after Argo
// Rollouts: Failed beats Error beats Inconclusive beats Running; all
// Successful is Successful. A gate with no result is an Error.
func Combine(names []string, results []GateResult) (v Verdict, gate, reason string, nextAt time.Time) {
	byName := map[string]GateResult{}
	for _, r := range results {
		byName[r.Gate] = r
	}
	rank := map[Verdict]int{VerdictSuccessful: 0, VerdictRunning: 1, VerdictInconclusive: 2, VerdictError: 3, VerdictFailed: 4}
	v = VerdictSuccessful
	for _, n := range names {
		r, ok := byName[n]
		if !ok {
			r = GateResult{Gate: n, Verdict: VerdictError, Reason: "no result"}
		}
		if r.Verdict == VerdictRunning && !r.NextAt.IsZero() && (nextAt.IsZero() || r.NextAt.Before(nextAt)) {
			nextAt = r.NextAt
		}
		if rank[r.Verdict] > rank[v] {
			v, gate, reason = r.Verdict, n, r.Reason
		}
	}
	if v == VerdictRunning {
		reason = fmt.Sprintf("gate %s: %s", gate, reason)
	}
	return v, gate, reason, nextAt
}

// onBad applies a rollback policy: revert, or hold with the reason.
func onBad(plan *CanaryPlan, s StateStatus, policy, reason, gate string) Decision {
	if policy == ActionHold {
		return Decision{Action: ActHold, Step: s.StepIndex, Weight: s.Weight, Reason: reason, Gate: gate}
	}
	return revert(reason, gate)
}

func next(plan *CanaryPlan, i int, reason string) Decision {
	if i+1 >= len(plan.Spec.Steps) {
		return Decision{Action: ActPromote, Step: i, Weight: 100, Reason: reason + "; all steps done"}
	}
	return advance(plan, i+1, reason)
}

func advance(plan *CanaryPlan, i int, reason string) Decision {
	return Decision{Action: ActAdvance, Step: i, Weight: WeightAt(plan.Spec.Steps, i), Reason: reason}
}

func start(plan *CanaryPlan, c Artifact, reason string) Decision {
	return Decision{Action: ActStart, Step: 0, Weight: WeightAt(plan.Spec.Steps, 0), Candidate: c, Reason: reason}
}

func revert(reason, gate string) Decision {
	return Decision{Action: ActRevert, Reason: reason, Gate: gate}
}

func wait(reason string) Decision { return Decision{Action: ActWait, Reason: reason} }

// WeightAt is the canary weight in force at step i: the last setWeight at or
// before it, or 0.
func WeightAt(steps []Step, i int) int {
	for j := min(i, len(steps)-1); j >= 0; j-- {
		if w := steps[j].SetWeight; w != nil {
			return *w
		}
	}
	return 0
}

func label(a Artifact) string {
	if a.Version == "" {
		return a.URI
	}
	return fmt.Sprintf("%s (%s)", a.Version, a.URI)
}
