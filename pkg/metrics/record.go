package metrics

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// phases are the values of canarybot_rollout_phase's phase label.
var phases = []string{canary.PhaseIdle, canary.PhaseProgressing, canary.PhasePaused, canary.PhasePromoted, canary.PhaseReverted}

// actions are the values of the action label; those that commit are the
// values of canarybot_rollout_transitions_total's.
var actions = []canary.Action{canary.ActWait, canary.ActStart, canary.ActAdvance, canary.ActRequestApproval,
	canary.ActHold, canary.ActPromote, canary.ActRevert}

// AfterTick returns a canary.Engine.AfterTick that records the ticks of
// the plan named plan in repo.
func (r *Recorder) AfterTick(repo, plan string) func(canary.Report, error, time.Duration) {
	return func(rep canary.Report, err error, took time.Duration) { r.Tick(repo, plan, rep, err, took) }
}

// Tick records one tick of plan in repo: its report, or its error, and
// how long it took. A tick cut short because the process is stopping
// (context.Canceled) is not recorded.
func (r *Recorder) Tick(repo, plan string, rep canary.Report, err error, took time.Duration) {
	if errors.Is(err, context.Canceled) {
		return
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	r.tickDuration.WithLabelValues(result).Observe(took.Seconds())
	r.mu.Lock()
	defer r.mu.Unlock()
	k := planKey{repo, plan}
	ps := r.series(k)
	if err != nil {
		r.failing.WithLabelValues(repo, plan).Set(1)
		return
	}
	r.failing.WithLabelValues(repo, plan).Set(0)
	r.lastSuccess.WithLabelValues(repo, plan).Set(float64(r.clock.Now().UnixMilli()) / 1e3)
	r.decisions.WithLabelValues(repo, plan, string(rep.Decision.Action)).Inc()
	if committed(rep) {
		r.transitions.WithLabelValues(repo, plan, string(rep.Decision.Action)).Inc()
	}
	if rep.Commit.Attempts > 0 {
		r.pushDuration.Observe(rep.PushTook.Seconds())
		r.pushRetries.Add(float64(rep.Commit.Attempts - 1))
	}
	for _, g := range slices.Concat(rep.Observed.Gates, rep.Observed.Background) {
		r.verdicts.WithLabelValues(repo, plan, g.Gate, string(g.Verdict)).Inc()
	}
	r.status(k, rep)
	if w := rep.SyncWait; w > 0 {
		// Each step's wait once, however many ticks see it synced.
		if start := rep.Observed.Sync.SyncedAt.Add(-w); !start.Equal(ps.syncedStep) {
			ps.syncedStep = start
			r.syncWait.Observe(w.Seconds())
		}
	}
}

// committed reports whether the tick's transition is in Git now.
func committed(rep canary.Report) bool {
	c := rep.Commit
	return rep.Decision.Action.Commits() && c.SHA != "" && !c.NoOp && c.Pending == ""
}

// series returns what the Recorder keeps of plan k, creating its counters
// at zero the first time: an alert on increase() then sees the first
// revert.
func (r *Recorder) series(k planKey) *planSeries {
	if ps, ok := r.plans[k]; ok {
		return ps
	}
	for _, a := range actions {
		r.decisions.WithLabelValues(k.repo, k.plan, string(a))
		if a.Commits() {
			r.transitions.WithLabelValues(k.repo, k.plan, string(a))
		}
	}
	ps := &planSeries{}
	r.plans[k] = ps
	return ps
}

// status sets the gauges of where plan k's rollout is. The caller holds
// r.mu.
func (r *Recorder) status(k planKey, rep canary.Report) {
	s := rep.Current
	for _, p := range phases {
		v := 0.0
		if p == s.Phase {
			v = 1
		}
		r.phase.WithLabelValues(k.repo, k.plan, p).Set(v)
	}
	r.stepIndex.WithLabelValues(k.repo, k.plan).Set(float64(s.StepIndex))
	r.weight.WithLabelValues(k.repo, k.plan).Set(float64(s.Weight))
	if (s.Phase == canary.PhaseProgressing || s.Phase == canary.PhasePaused) && !s.StepStartedAt.IsZero() {
		r.stepSeconds.set(k, s.StepStartedAt)
	} else {
		r.stepSeconds.delete(k)
	}
	if d, ok := ExpectedStep(rep.CanaryPlan, s.StepIndex, r.analysisBudget); ok && s.Phase == canary.PhaseProgressing {
		r.expected.WithLabelValues(k.repo, k.plan).Set(d.Seconds())
	} else {
		r.expected.DeleteLabelValues(k.repo, k.plan)
	}
}

// ExpectedStep is how long step i of plan is expected to take at most:
// Argo CD's sync timeout, plus a pause's duration, plus an analysis's
// bound (see analysisBound). A step that waits for a reviewer has no
// bound (false), nor has a step the plan does not have.
func ExpectedStep(plan *canary.CanaryPlan, i int, analysisBudget time.Duration) (time.Duration, bool) {
	if plan == nil || i < 0 || i >= len(plan.Spec.Steps) {
		return 0, false
	}
	step := plan.Spec.Steps[i]
	d := plan.Spec.ArgoCD.SyncTimeout.Or(canary.DefaultSyncTimeout)
	switch {
	case step.Pause != nil && step.Pause.UntilApproved:
		return 0, false
	case step.Pause != nil:
		d += step.Pause.Duration.Or(0)
	case step.Analysis != nil:
		d += analysisBound(plan, step.Analysis.Gates, analysisBudget)
	}
	return d, true
}

// analysisBound is the longest time the named gates take to conclude:
// initialDelay + interval × count for a threshold gate, budget for gates
// that conclude when the evidence does.
func analysisBound(plan *canary.CanaryPlan, gates []string, budget time.Duration) time.Duration {
	var bound time.Duration
	for _, name := range gates {
		g, ok := plan.Gate(name)
		t := g.Threshold
		if !ok || t == nil {
			bound = max(bound, budget)
			continue
		}
		count := canary.DefaultGateCount
		if t.Count != nil {
			count = *t.Count
		}
		bound = max(bound, t.InitialDelay.Or(0)+time.Duration(count)*t.Interval.Or(canary.DefaultGateInterval))
	}
	return bound
}
