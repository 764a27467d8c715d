package canary

import (
	"fmt"
	"testing"
	"time"
)

func TestApply(t *testing.T) {
	plan := testPlan()
	st := NewState("qwen", v1)
	st = Apply(plan, st, Decision{Action: ActStart, Candidate: v2, Step: 0, Weight: 10}, t0)
	if s := st.Status; s.Phase != PhaseProgressing || s.Candidate != v2 || s.Weight != 10 || s.StepsHash != StepsHash(plan.Spec.Steps) {
		t.Fatalf("after start: %+v", s)
	}
	if d := DesiredOf(st); d != (Desired{Stable: v1.URI, Canary: v2.URI, CanaryWeight: 10}) {
		t.Errorf("desired = %+v", d)
	}
	st = Apply(plan, st, Decision{Action: ActAdvance, Step: 3, Weight: 50}, t0.Add(time.Minute))
	if s := st.Status; s.StepIndex != 3 || s.Weight != 50 || !s.StepStartedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after advance: %+v", s)
	}
	held := Apply(plan, st, Decision{Action: ActHold, Step: 3, Weight: 50, Reason: "inconclusive"}, t0)
	if s := held.Status; s.Phase != PhasePaused || s.Weight != 50 || s.Candidate != v2 || s.Reason != "inconclusive" {
		t.Errorf("after hold: %+v", s)
	}
	promoted := Apply(plan, st, Decision{Action: ActPromote}, t0)
	if s := promoted.Status; s.Phase != PhasePromoted || s.Stable != v2 || !s.Candidate.IsZero() || DesiredOf(promoted).Canary != "" {
		t.Errorf("after promote: %+v", s)
	}
	reverted := Apply(plan, st, Decision{Action: ActRevert, Reason: "gate latency failed"}, t0)
	if s := reverted.Status; s.Phase != PhaseReverted || s.Stable != v1 || !s.Candidate.IsZero() || !s.IsFailed(v2.URI) {
		t.Errorf("after revert: %+v", s)
	}
	if h := reverted.Status.History; len(h) != 3 || h[2].Action != string(ActRevert) || h[2].Artifact != v2.URI {
		t.Errorf("history = %+v", h)
	}
	if len(st.Status.History) != 2 {
		t.Errorf("Apply mutated its input: history %d", len(st.Status.History))
	}
}

func TestApplyBoundsHistory(t *testing.T) {
	st := NewState("qwen", v1)
	for i := 0; i < MaxHistory+10; i++ {
		st = Apply(testPlan(), st, Decision{Action: ActAdvance, Step: 1, Weight: 10}, t0)
	}
	if n := len(st.Status.History); n != MaxHistory {
		t.Errorf("history len = %d, want %d", n, MaxHistory)
	}
}

// status.failed keeps the newest MaxFailed reverted artifacts, so the
// state file stays bounded; the oldest is the one dropped.
func TestApplyBoundsFailed(t *testing.T) {
	plan := testPlan()
	st := NewState("qwen", v1)
	uri := func(i int) string { return fmt.Sprintf("oci://ghcr.io/acme/qwen@sha256:%064x", i) }
	for i := range MaxFailed + 3 {
		st = Apply(plan, st, Decision{Action: ActStart, Candidate: Artifact{URI: uri(i)}, Weight: 10}, t0)
		st = Apply(plan, st, Decision{Action: ActRevert, Reason: "gate latency failed"}, t0)
	}
	f := st.Status.Failed
	if len(f) != MaxFailed || f[0].URI != uri(3) || f[len(f)-1].URI != uri(MaxFailed+2) {
		t.Fatalf("failed: %d artifacts, first %s, last %s; want %d from %s to %s", len(f), f[0].URI, f[len(f)-1].URI, MaxFailed, uri(3), uri(MaxFailed+2))
	}
	if st.Status.IsFailed(uri(2)) || !st.Status.IsFailed(uri(3)) {
		t.Errorf("IsFailed: the dropped artifact %v, the oldest kept %v; want false, true", st.Status.IsFailed(uri(2)), st.Status.IsFailed(uri(3)))
	}
	b, err := MarshalState(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxPlanBytes/4 {
		t.Errorf("state with %d failed artifacts is %d bytes, want under a quarter of %d", MaxFailed, len(b), MaxPlanBytes)
	}
}

func TestCommitMessageTrailers(t *testing.T) {
	plan := testPlan()
	before := Apply(plan, NewState("qwen", v1), Decision{Action: ActStart, Candidate: v2, Weight: 10}, t0)
	after := Apply(plan, before, Decision{Action: ActRevert, Reason: "gate latency failed"}, t0)
	ch := CommitMessage(plan, before, after, Decision{Action: ActRevert, Reason: "gate latency failed"})
	want := map[string]string{TrailerPlan: "qwen", TrailerStep: "0", TrailerAction: "revert", TrailerArtifact: v2.URI}
	for _, tr := range ch.Trailers {
		if want[tr.Key] != tr.Value {
			t.Errorf("trailer %s = %q, want %q", tr.Key, tr.Value, want[tr.Key])
		}
		delete(want, tr.Key)
	}
	if len(want) != 0 {
		t.Errorf("missing trailers %v", want)
	}
	if ch.Subject != "canary(qwen): revert v2" {
		t.Errorf("subject = %q", ch.Subject)
	}
}
