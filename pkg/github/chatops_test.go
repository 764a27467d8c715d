package github

import (
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestParseCommands(t *testing.T) {
	plans := []string{"qwen", "fraud"}
	cases := []struct {
		body string
		want []Command
	}{
		{"/canarybot abort", []Command{{Verb: "abort"}}},
		{"LGTM\n/canarybot abort qwen answers look wrong\n", []Command{{Verb: "abort", Plan: "qwen", Reason: "answers look wrong"}}},
		{"  /canarybot Pause fraud", []Command{{Verb: "pause", Plan: "fraud"}}},
		{"/canarybot promote\n/canarybot status", []Command{{Verb: "promote"}, {Verb: "status"}}},
		{"please /canarybot abort", nil}, // not at the start of a line
		{"/canarybot dance", []Command{{Verb: "dance"}}},
	}
	for _, tc := range cases {
		got := ParseCommands(tc.body, plans)
		if len(got) != len(tc.want) {
			t.Errorf("ParseCommands(%q) = %+v, want %+v", tc.body, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("ParseCommands(%q)[%d] = %+v, want %+v", tc.body, i, got[i], tc.want[i])
			}
		}
	}
}

func TestSettle(t *testing.T) {
	progressing := &canary.RolloutState{Status: canary.StateStatus{Phase: canary.PhaseProgressing}}
	reverted := &canary.RolloutState{Status: canary.StateStatus{Phase: canary.PhaseReverted}}
	paused := &canary.RolloutState{Status: canary.StateStatus{Phase: canary.PhasePaused}}
	commit := canary.CommitResult{SHA: "0123456789abcdef"}
	cases := []struct {
		name, verb string
		r          canary.Report
		settled    bool
	}{
		{"abort settled by the revert commit", VerbAbort, canary.Report{Decision: canary.Decision{Action: canary.ActRevert}, State: reverted, Commit: commit}, true},
		{"abort waits while the rollout only waits", VerbAbort, canary.Report{Decision: canary.Decision{Action: canary.ActWait}, State: progressing}, false},
		{"abort with no rollout", VerbAbort, canary.Report{Decision: canary.Decision{Action: canary.ActWait}, State: reverted}, true},
		{"pause settled by hold", VerbPause, canary.Report{Decision: canary.Decision{Action: canary.ActHold}, State: paused, Commit: commit}, true},
		{"resume of a rollout that is not held", VerbResume, canary.Report{Decision: canary.Decision{Action: canary.ActWait}, State: progressing}, true},
		{"promote pending while the approval is requested", VerbPromote, canary.Report{Decision: canary.Decision{Action: canary.ActRequestApproval}, State: progressing}, false},
		{"promote settled by the advance", VerbPromote, canary.Report{Decision: canary.Decision{Action: canary.ActAdvance}, State: progressing, Commit: commit}, true},
	}
	for _, tc := range cases {
		if _, got := settle(tc.verb, tc.r); got != tc.settled {
			t.Errorf("%s: settled=%v, want %v", tc.name, got, tc.settled)
		}
	}
}
