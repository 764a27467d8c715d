package canary

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func intp(i int) *int { return &i }

// testPlan: 0 setWeight 10, 1 analysis, 2 pause 1m, 3 setWeight 50,
// 4 pause until approved, 5 setWeight 100.
func testPlan(mut ...func(*CanaryPlan)) *CanaryPlan {
	p := &CanaryPlan{
		APIVersion: APIVersion, Kind: KindCanaryPlan,
		Metadata: ObjectMeta{Name: "qwen"},
		Spec: PlanSpec{
			Model:   ModelSpec{Name: "qwen", Source: SourceSpec{OCI: &OCISource{Repository: "ghcr.io/acme/qwen"}}},
			Traffic: TrafficSpec{Mode: ModeKServe, KServe: &KServeTraffic{InferenceService: "qwen"}},
			Overlay: "manifests/overlays/qwen",
			ArgoCD:  ArgoCDSpec{Application: "qwen"},
			Steps: []Step{
				{SetWeight: intp(10)},
				{Analysis: &AnalysisStep{Gates: []string{"latency", "errors"}}},
				{Pause: &PauseStep{Duration: D(time.Minute)}},
				{SetWeight: intp(50)},
				{Pause: &PauseStep{UntilApproved: true}},
				{SetWeight: intp(100)},
			},
			Gates: []GateSpec{
				{Name: "latency", Threshold: &ThresholdGate{Query: "q1", SuccessCondition: "result < 1.2"}},
				{Name: "errors", Threshold: &ThresholdGate{Query: "q2", SuccessCondition: "result < 0.01"}},
			},
		},
	}
	for _, m := range mut {
		m(p)
	}
	p.Default()
	return p
}

var (
	v1 = Artifact{URI: "oci://ghcr.io/acme/qwen@sha256:" + strings.Repeat("1", 64), Version: "v1"}
	v2 = Artifact{URI: "oci://ghcr.io/acme/qwen@sha256:" + strings.Repeat("2", 64), Version: "v2"}
	v3 = Artifact{URI: "oci://ghcr.io/acme/qwen@sha256:" + strings.Repeat("3", 64), Version: "v3"}
)

func state(phase string, step int, mut ...func(*StateStatus)) *RolloutState {
	st := NewState("qwen", v1)
	s := &st.Status
	s.Phase, s.StepIndex, s.StepStartedAt = phase, step, t0
	if phase == PhaseProgressing || phase == PhasePaused {
		s.Candidate = v2
		s.Weight = WeightAt(testPlan().Spec.Steps, step)
		s.StepsHash = StepsHash(testPlan().Spec.Steps)
	}
	for _, m := range mut {
		m(s)
	}
	return st
}

var synced = SyncObservation{Revision: "abc", Ready: true}

func gate(name string, v Verdict) GateResult {
	return GateResult{Gate: name, Verdict: v, Reason: name + " " + string(v)}
}

func TestDecideApprovalProposesTheNextTransition(t *testing.T) {
	plan := testPlan()
	d := Decide(plan, state(PhaseProgressing, 4), Observations{Sync: synced}, t0)
	if d.Action != ActRequestApproval || d.Next == nil {
		t.Fatalf("got %+v, want a request for approval carrying the next transition", d)
	}
	approved := Decide(plan, state(PhaseProgressing, 4), Observations{Sync: synced, Approved: true}, t0)
	if d.Next.Action != approved.Action || d.Next.Step != approved.Step || d.Next.Weight != approved.Weight {
		t.Errorf("proposed %s step %d weight %d, but approval commits %s step %d weight %d",
			d.Next.Action, d.Next.Step, d.Next.Weight, approved.Action, approved.Step, approved.Weight)
	}
}

func TestDecide(t *testing.T) {
	cases := []struct {
		name   string
		plan   *CanaryPlan
		state  *RolloutState
		obs    Observations
		now    time.Time
		action Action
		step   int
		weight int
		until  time.Time
		reason string // substring
		gate   string
	}{
		{name: "idle without artifact waits", state: state(PhaseIdle, 0), obs: Observations{Sync: synced},
			action: ActWait, reason: "no new artifact"},
		{name: "idle with the stable artifact waits", state: state(PhaseIdle, 0), obs: Observations{Candidate: &v1, Sync: synced},
			action: ActWait, reason: "already stable"},
		{name: "a reverted artifact is never re-proposed", state: state(PhaseReverted, 0, func(s *StateStatus) { s.Failed = []Artifact{v2} }),
			obs: Observations{Candidate: &v2, Sync: synced}, action: ActWait, reason: "reverted before"},
		{name: "idle waits for the last transition to sync", state: state(PhaseIdle, 0),
			obs: Observations{Candidate: &v2, Sync: SyncObservation{Reason: "OutOfSync"}}, action: ActWait, reason: "OutOfSync",
			until: t0.Add(SyncPoll)},
		{name: "idle starts a new artifact at step 0", state: state(PhaseIdle, 0), obs: Observations{Candidate: &v2, Sync: synced},
			action: ActStart, step: 0, weight: 10, reason: "new artifact v2"},
		{name: "promoted starts the next artifact", state: state(PhasePromoted, 5, func(s *StateStatus) { s.Stable = v2 }),
			obs: Observations{Candidate: &v3, Sync: synced}, action: ActStart, weight: 10},
		{name: "setWeight waits for sync", state: state(PhaseProgressing, 0), now: t0.Add(time.Minute),
			obs: Observations{Sync: SyncObservation{Reason: "Progressing"}}, action: ActWait, step: 0, weight: 10, reason: "waiting for Argo CD",
			until: t0.Add(time.Minute + SyncPoll)},
		{name: "a sync wait looks again no later than the sync timeout", state: state(PhaseProgressing, 0),
			now: t0.Add(DefaultSyncTimeout - 2*time.Second), obs: Observations{Sync: SyncObservation{Reason: "Progressing"}},
			action: ActWait, step: 0, weight: 10, reason: "waiting for Argo CD", until: t0.Add(DefaultSyncTimeout)},
		{name: "sync failure reverts by default", state: state(PhaseProgressing, 0), now: t0.Add(time.Minute),
			obs: Observations{Sync: SyncObservation{Failed: true, Reason: "SyncFailed"}}, action: ActRevert, reason: "sync failed: SyncFailed"},
		{name: "sync failure holds when the plan says hold", plan: testPlan(func(p *CanaryPlan) { p.Spec.Rollback.OnSyncFailure = ActionHold }),
			state: state(PhaseProgressing, 0), now: t0.Add(time.Minute),
			obs: Observations{Sync: SyncObservation{Failed: true, Reason: "Degraded"}}, action: ActHold, step: 0, weight: 10, reason: "Degraded"},
		{name: "sync timeout reverts", state: state(PhaseProgressing, 0), now: t0.Add(DefaultSyncTimeout),
			obs: Observations{Sync: SyncObservation{Reason: "OutOfSync"}}, action: ActRevert, reason: "not synced within 10m0s"},
		{name: "synced weight advances to the analysis", state: state(PhaseProgressing, 0), obs: Observations{Sync: synced},
			action: ActAdvance, step: 1, weight: 10, reason: "weight 10% synced"},
		{name: "running analysis waits for the earliest next measurement", state: state(PhaseProgressing, 1),
			obs: Observations{Sync: synced, Gates: []GateResult{
				{Gate: "latency", Verdict: VerdictRunning, NextAt: t0.Add(3 * time.Minute)},
				{Gate: "errors", Verdict: VerdictRunning, NextAt: t0.Add(2 * time.Minute)}}},
			action: ActWait, step: 1, weight: 10, until: t0.Add(2 * time.Minute), reason: "analysis running"},
		{name: "successful analysis advances", state: state(PhaseProgressing, 1),
			obs:    Observations{Sync: synced, Gates: []GateResult{gate("latency", VerdictSuccessful), gate("errors", VerdictSuccessful)}},
			action: ActAdvance, step: 2, weight: 10, reason: "gates passed"},
		{name: "one successful gate and one running waits", state: state(PhaseProgressing, 1),
			obs:    Observations{Sync: synced, Gates: []GateResult{gate("latency", VerdictSuccessful), gate("errors", VerdictRunning)}},
			action: ActWait, step: 1, weight: 10},
		{name: "failed gate reverts and is named", state: state(PhaseProgressing, 1),
			obs:    Observations{Sync: synced, Gates: []GateResult{gate("latency", VerdictFailed), gate("errors", VerdictSuccessful)}},
			action: ActRevert, reason: "gate latency failed", gate: "latency"},
		{name: "failed beats inconclusive", state: state(PhaseProgressing, 1),
			obs:    Observations{Sync: synced, Gates: []GateResult{gate("latency", VerdictInconclusive), gate("errors", VerdictFailed)}},
			action: ActRevert, gate: "errors"},
		{name: "inconclusive holds by default", state: state(PhaseProgressing, 1),
			obs:    Observations{Sync: synced, Gates: []GateResult{gate("latency", VerdictInconclusive), gate("errors", VerdictSuccessful)}},
			action: ActHold, step: 1, weight: 10, reason: "gate latency inconclusive", gate: "latency"},
		{name: "inconclusive reverts when the plan says so", plan: testPlan(func(p *CanaryPlan) { p.Spec.Rollback.OnInconclusive = ActionRevert }),
			state:  state(PhaseProgressing, 1),
			obs:    Observations{Sync: synced, Gates: []GateResult{gate("latency", VerdictInconclusive), gate("errors", VerdictSuccessful)}},
			action: ActRevert, gate: "latency"},
		{name: "error holds by default", state: state(PhaseProgressing, 1),
			obs:    Observations{Sync: synced, Gates: []GateResult{gate("latency", VerdictSuccessful), gate("errors", VerdictError)}},
			action: ActHold, step: 1, weight: 10, reason: "gate errors errored", gate: "errors"},
		{name: "error reverts when the plan says so", plan: testPlan(func(p *CanaryPlan) { p.Spec.Rollback.OnError = ActionRevert }),
			state:  state(PhaseProgressing, 1),
			obs:    Observations{Sync: synced, Gates: []GateResult{gate("latency", VerdictSuccessful), gate("errors", VerdictError)}},
			action: ActRevert, gate: "errors"},
		{name: "a missing gate result is an error", state: state(PhaseProgressing, 1),
			obs:    Observations{Sync: synced, Gates: []GateResult{gate("latency", VerdictSuccessful)}},
			action: ActHold, gate: "errors", step: 1, weight: 10, reason: "no result"},
		{name: "pause waits until its end", state: state(PhaseProgressing, 2), now: t0.Add(30 * time.Second), obs: Observations{Sync: synced},
			action: ActWait, step: 2, weight: 10, until: t0.Add(time.Minute), reason: "pausing until"},
		{name: "pause ends and the next weight follows", state: state(PhaseProgressing, 2), now: t0.Add(time.Minute), obs: Observations{Sync: synced},
			action: ActAdvance, step: 3, weight: 50},
		{name: "approval step requests approval", state: state(PhaseProgressing, 4), obs: Observations{Sync: synced},
			action: ActRequestApproval, step: 4, weight: 50, reason: "approval"},
		{name: "approval step advances once approved", state: state(PhaseProgressing, 4), obs: Observations{Sync: synced, Approved: true},
			action: ActAdvance, step: 5, weight: 100, reason: "approved"},
		{name: "last step synced promotes", state: state(PhaseProgressing, 5), obs: Observations{Sync: synced},
			action: ActPromote, step: 5, weight: 100, reason: "all steps done"},
		{name: "plan steps edited mid-rollout restart from step 0", state: state(PhaseProgressing, 3),
			plan:   testPlan(func(p *CanaryPlan) { p.Spec.Steps[0].SetWeight = intp(5) }),
			obs:    Observations{Sync: synced},
			action: ActAdvance, step: 0, weight: 5, reason: "plan steps changed"},
		{name: "plan gates edited mid-rollout keep the step", state: state(PhaseProgressing, 2), now: t0.Add(time.Minute),
			plan:   testPlan(func(p *CanaryPlan) { p.Spec.Gates[0].Threshold.SuccessCondition = "result < 2" }),
			obs:    Observations{Sync: synced},
			action: ActAdvance, step: 3, weight: 50},
		{name: "plan shortened below the step restarts", state: state(PhaseProgressing, 5, func(s *StateStatus) {
			s.StepsHash = StepsHash(testPlan(func(p *CanaryPlan) { p.Spec.Steps = p.Spec.Steps[:2] }).Spec.Steps)
		}),
			plan:   testPlan(func(p *CanaryPlan) { p.Spec.Steps = p.Spec.Steps[:2] }),
			obs:    Observations{Sync: synced},
			action: ActAdvance, step: 0, weight: 10, reason: "restarting"},
		{name: "abort reverts", state: state(PhaseProgressing, 3), obs: Observations{Sync: synced, Abort: "bad answers"},
			action: ActRevert, reason: "aborted: bad answers"},
		{name: "held waits", state: state(PhasePaused, 1, func(s *StateStatus) { s.Reason = "gate inconclusive" }),
			obs: Observations{Sync: synced}, action: ActWait, reason: "held: gate inconclusive"},
		{name: "held resumes the same step", state: state(PhasePaused, 1), obs: Observations{Sync: synced, Resume: true},
			action: ActAdvance, step: 1, weight: 10, reason: "resumed"},
		{name: "held aborts", state: state(PhasePaused, 1), obs: Observations{Abort: "no"}, action: ActRevert},
		{name: "a person's pause holds at the current step", state: state(PhaseProgressing, 3), obs: Observations{Sync: synced, Pause: "@ana: checking answers"},
			action: ActHold, step: 3, weight: 50, reason: "paused: @ana: checking answers"},
		{name: "abort beats pause", state: state(PhaseProgressing, 3), obs: Observations{Sync: synced, Pause: "x", Abort: "y"},
			action: ActRevert, reason: "aborted: y"},
		{name: "queue ignores a newer artifact mid-rollout", state: state(PhaseProgressing, 0), obs: Observations{Sync: synced, Candidate: &v3},
			action: ActAdvance, step: 1, weight: 10},
		{name: "supersede restarts with the newer artifact", plan: testPlan(func(p *CanaryPlan) { p.Spec.Concurrency = ConcurrencySupersede }),
			state: state(PhaseProgressing, 3), obs: Observations{Sync: synced, Candidate: &v3},
			action: ActStart, step: 0, weight: 10, reason: "superseded by v3"},
		{name: "a moved stable tag is reported, not deployed", state: state(PhaseIdle, 0),
			obs:    Observations{Candidate: &v1moved, Sync: synced},
			action: ActWait, reason: "tag v1 moved from sha256:" + strings.Repeat("1", 64) + " to sha256:" + strings.Repeat("9", 64) + "; not deploying a moved tag"},
		{name: "a moved tag of a reverted version is not deployed", state: state(PhaseReverted, 0, func(s *StateStatus) { s.Failed = []Artifact{v2} }),
			obs: Observations{Candidate: &v2moved, Sync: synced}, action: ActWait, reason: "tag v2 moved from sha256:" + strings.Repeat("2", 64)},
		{name: "supersede does not restart on a moved tag of the running candidate", plan: testPlan(func(p *CanaryPlan) { p.Spec.Concurrency = ConcurrencySupersede }),
			state: state(PhaseProgressing, 0), obs: Observations{Sync: synced, Candidate: &v2moved},
			action: ActAdvance, step: 1, weight: 10},
		{name: "an MLflow version stored where the stable points is already stable",
			state:  state(PhaseIdle, 0, func(s *StateStatus) { s.Stable = Artifact{URI: mlflow7.StorageURI} }),
			obs:    Observations{Candidate: &mlflow7, Sync: synced},
			action: ActWait, reason: "already stable"},
		{name: "queue: with v3 offered too, the running v2 finishes first", state: state(PhaseProgressing, 5),
			obs: Observations{Sync: synced, Candidate: &v3}, action: ActPromote, step: 5, weight: 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := tc.plan
			if plan == nil {
				plan = testPlan()
			}
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			d := Decide(plan, tc.state, tc.obs, now)
			if d.Action != tc.action {
				t.Fatalf("action = %s (%s), want %s", d.Action, d.Reason, tc.action)
			}
			if d.Action != ActRevert && d.Action != ActWait || tc.step != 0 || tc.weight != 0 {
				if d.Step != tc.step || d.Weight != tc.weight {
					t.Errorf("step/weight = %d/%d, want %d/%d", d.Step, d.Weight, tc.step, tc.weight)
				}
			}
			if !d.Until.Equal(tc.until) {
				t.Errorf("until = %s, want %s", d.Until, tc.until)
			}
			if !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("reason = %q, want it to contain %q", d.Reason, tc.reason)
			}
			if d.Gate != tc.gate {
				t.Errorf("gate = %q, want %q", d.Gate, tc.gate)
			}
		})
	}
}

func TestDecideBackgroundAnalysis(t *testing.T) {
	plan := testPlan(func(p *CanaryPlan) { p.Spec.BackgroundAnalysis = &AnalysisStep{Gates: []string{"latency"}} })
	st := state(PhaseProgressing, 2)
	d := Decide(plan, st, Observations{Sync: synced, Background: []GateResult{gate("latency", VerdictFailed)}}, t0)
	if d.Action != ActRevert || d.Gate != "latency" {
		t.Errorf("a failed background gate must revert mid-pause: %+v", d)
	}
	for _, v := range []Verdict{VerdictRunning, VerdictInconclusive, VerdictError, VerdictSuccessful} {
		d := Decide(plan, st, Observations{Sync: synced, Background: []GateResult{gate("latency", v)}}, t0)
		if d.Action != ActWait || !strings.Contains(d.Reason, "pausing") {
			t.Errorf("background %s must leave the step alone: %+v", v, d)
		}
	}
}

// A step proposed in a pull request at t0 and merged (as approved) an
// hour later starts when it landed: its pause runs from the merge, and its
// sync deadline too, instead of having passed before the merge.
func TestDecideStepStartsWhenItLanded(t *testing.T) {
	plan := testPlan()
	at := func(step int) *RolloutState {
		st := NewState("qwen", v1)
		st.Status.Phase, st.Status.Candidate, st.Status.StepIndex = PhaseProgressing, v2, step
		st.Status.StepStartedAt, st.Status.StepsHash = t0, StepsHash(plan.Spec.Steps)
		return st
	}
	merged := t0.Add(time.Hour)
	synced := Observations{Sync: SyncObservation{Ready: true}, StepLandedAt: merged}
	d := Decide(plan, at(2), synced, merged.Add(30*time.Second))
	if d.Action != ActWait || !d.Until.Equal(merged.Add(time.Minute)) {
		t.Errorf("pause after a late merge: %+v, want a wait until %s", d, merged.Add(time.Minute))
	}
	if d := Decide(plan, at(2), Observations{Sync: SyncObservation{Ready: true}}, merged.Add(30*time.Second)); d.Action != ActAdvance {
		t.Errorf("without the landing time the pause has long passed: %+v", d)
	}
	unsynced := Observations{Sync: SyncObservation{Reason: "OutOfSync"}, StepLandedAt: merged}
	if d := Decide(plan, at(3), unsynced, merged.Add(time.Minute)); d.Action != ActWait {
		t.Errorf("sync deadline counted from the proposal, not the merge: %+v", d)
	}
	if d := Decide(plan, at(3), Observations{Sync: SyncObservation{Reason: "OutOfSync"}}, merged.Add(time.Minute)); d.Action != ActRevert {
		t.Errorf("without the landing time the sync deadline has passed: %+v", d)
	}
}
