package canary

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewRequestOnlyWhereTheRolloutCanTakeIt(t *testing.T) {
	cases := []struct {
		verb  string
		state *RolloutState
		err   string // "" for accepted
	}{
		{RequestPause, state(PhaseProgressing, 1), ""},
		{RequestPause, state(PhasePaused, 1), "only a progressing rollout can be paused"},
		{RequestResume, state(PhasePaused, 1), ""},
		{RequestResume, state(PhaseProgressing, 1), "only a paused rollout can be resumed"},
		{RequestAbort, state(PhaseProgressing, 3), ""},
		{RequestAbort, state(PhasePaused, 3), ""},
		{RequestAbort, state(PhasePromoted, 5), "no rollout is in progress"},
		{RequestPromote, state(PhaseProgressing, 2), ""}, // a timed pause
		{RequestPromote, state(PhaseProgressing, 4), ""}, // an approval step
		{RequestPromote, state(PhaseProgressing, 1), "this is not one"},
		{RequestPromote, state(PhasePaused, 2), "resume a paused one"},
		{"rollback", state(PhaseProgressing, 1), `unknown request "rollback"`},
	}
	for _, c := range cases {
		req, err := NewRequest(testPlan(), c.state, c.verb, "alice", "why", t0)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s at %s/%d: %v", c.verb, c.state.Status.Phase, c.state.Status.StepIndex, err)
		case c.err == "" && (req.Spec.Step != c.state.Status.StepIndex || req.Spec.Candidate != v2.URI || req.Spec.By != "alice"):
			t.Errorf("%s: request %+v does not name the rollout where it is", c.verb, req.Spec)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s at %s/%d: %v, want an error saying %q", c.verb, c.state.Status.Phase, c.state.Status.StepIndex, err, c.err)
		case c.err != "" && c.verb != "rollback" && !errors.Is(err, ErrRequestNotApplicable):
			t.Errorf("%s: %v does not wrap ErrRequestNotApplicable", c.verb, err)
		}
	}
	if _, err := NewRequest(testPlan(), state(PhaseProgressing, 1), RequestPause, " ", "", t0); err == nil {
		t.Error("a request with nobody asking was accepted")
	}
}

// Decide carries a pending request out as it would a ChatOps command, the
// transition records its id, and after Apply the same request is spent.
func TestDecideCarriesOutARequestOnce(t *testing.T) {
	now := t0.Add(10 * time.Second)
	cases := []struct {
		verb   string
		state  *RolloutState
		action Action
		step   int
		reason string
	}{
		{RequestPause, state(PhaseProgressing, 1), ActHold, 1, "paused: alice (why)"},
		{RequestResume, state(PhasePaused, 1), ActAdvance, 1, "resumed by a person"},
		{RequestAbort, state(PhaseProgressing, 3), ActRevert, 0, "aborted: alice (why)"},
		{RequestPromote, state(PhaseProgressing, 2), ActAdvance, 3, "promoted by alice (why)"},
		{RequestPromote, state(PhaseProgressing, 4), ActAdvance, 5, "promoted by alice (why)"},
	}
	for _, c := range cases {
		plan := testPlan()
		req, err := NewRequest(plan, c.state, c.verb, "alice", "why", t0)
		if err != nil {
			t.Fatal(err)
		}
		obs := Observations{Sync: synced, Request: req, Gates: []GateResult{gate("latency", VerdictInconclusive)}}
		d := Decide(plan, c.state, obs, now)
		if d.Action != c.action || (c.action != ActRevert && d.Step != c.step) || !strings.Contains(d.Reason, c.reason) || d.Request != req.Spec.ID {
			t.Errorf("%s: %s step %d %q request %q; want %s step %d %q carrying %s",
				c.verb, d.Action, d.Step, d.Reason, d.Request, c.action, c.step, c.reason, req.Spec.ID)
			continue
		}
		after := Apply(plan, c.state, d, now)
		if after.Status.LastRequest != req.Spec.ID || req.Pending(after.Status) {
			t.Errorf("%s: after Apply, last request %q and still pending: %v", c.verb, after.Status.LastRequest, req.Pending(after.Status))
		}
		// Even where the rollout comes back to the same phase and step (a
		// resume re-enters the step it held at), the request is spent.
		again := *after
		again.Status.Phase, again.Status.StepIndex = c.state.Status.Phase, c.state.Status.StepIndex
		if req.Pending(again.Status) {
			t.Errorf("%s: pending again once carried out", c.verb)
		}
	}
}

func TestDecideIgnoresAStaleRequest(t *testing.T) {
	plan := testPlan()
	req, err := NewRequest(plan, state(PhaseProgressing, 1), RequestPause, "alice", "", t0)
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*RolloutState{
		"the rollout moved to the next step": state(PhaseProgressing, 3),
		"another candidate rolls out":        state(PhaseProgressing, 1, func(s *StateStatus) { s.Candidate = v3 }),
	} {
		d := Decide(plan, st, Observations{Sync: synced, Request: req}, t0.Add(time.Second))
		if strings.Contains(d.Reason, "alice") || d.Request != "" {
			t.Errorf("%s: %s %q carrying %q; a stale request must do nothing", name, d.Action, d.Reason, d.Request)
		}
	}
	// A pause, like a ChatOps pause, holds at once, without waiting for
	// the step's sync.
	d := Decide(plan, state(PhaseProgressing, 1), Observations{Request: req, Sync: SyncObservation{Reason: "OutOfSync"}}, t0)
	if d.Action != ActHold || d.Request != req.Spec.ID {
		t.Errorf("pause before the step synced: %s (%s)", d.Action, d.Reason)
	}
}

func TestParseRequestIsStrict(t *testing.T) {
	good := "apiVersion: canarybot.dev/v1alpha1\nkind: RolloutRequest\nmetadata: {name: qwen}\n" +
		"spec: {id: pause-1, verb: pause, by: alice, at: 2026-12-07T00:00:00Z, candidate: x, phase: Progressing, step: 1}\n"
	if _, err := ParseRequest([]byte(good)); err != nil {
		t.Fatalf("good request: %v", err)
	}
	for name, bad := range map[string]string{
		"unknown field": strings.Replace(good, "step: 1", "step: 1, force: true", 1),
		"unknown verb":  strings.Replace(good, "verb: pause", "verb: rollback", 1),
		"no author":     strings.Replace(good, "by: alice, ", "", 1),
		"no id":         strings.Replace(good, "id: pause-1, ", "", 1),
		"wrong kind":    strings.Replace(good, "RolloutRequest", "CanaryPlan", 1),
		"not YAML":      "spec: [",
	} {
		if _, err := ParseRequest([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
