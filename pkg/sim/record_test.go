package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// TestRecordAndReplay records a revert, then replays it with the gates
// reading the recorded world instead of their own: the replay decides the
// same, on the same traffic. A replay with other gates moves the split at
// other times, which CheckPrefix reports, and stops where the recording
// ends.
func TestRecordAndReplay(t *testing.T) {
	cfg := Config{PlanYAML: []byte(testPlan), Scenario: sharedScenario(t, "error-rate-10x"), Seed: 3, Gates: testGates}
	rec, err := Record(context.Background(), cfg, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Result.Outcome != OutcomeRevert || rec.Extra != time.Minute || !rec.World.Now().Equal(rec.Decided.Add(time.Minute)) {
		t.Fatalf("recording: %+v, decided %s, world at %s; want a revert recorded 1m past it", rec.Result, rec.Decided, rec.World.Now())
	}
	// The split in force before the revert carried on: the canary served
	// more requests after the decision.
	if got := rec.World.CanaryRequests(); got <= rec.Result.CanaryRequests+60 {
		t.Errorf("canary requests %d by the recording's end, %d at the revert: the revert's weight 0 was applied",
			got, rec.Result.CanaryRequests)
	}

	replay := cfg
	replay.Signals, replay.StopAt = rec.World, rec.World.Now()
	rep, err := Record(context.Background(), replay, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Result != rec.Result {
		t.Errorf("replay decided %+v, recording %+v", rep.Result, rec.Result)
	}
	if err := rep.World.CheckPrefix(rec.World); err != nil {
		t.Errorf("replay traffic: %v", err)
	}

	short, err := Record(context.Background(), cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := short.World.CheckPrefix(rec.World); err != nil {
		t.Errorf("a recording without the extra minute is not a prefix of one with it: %v", err)
	}
	if err := rec.World.CheckPrefix(short.World); !errors.Is(err, ErrTrafficDiverged) || !strings.Contains(err.Error(), "recording ends") {
		t.Errorf("CheckPrefix of a longer world = %v, want the recording's end", err)
	}
}

// TestReplayThatMovesTheSplitOtherwiseDiverges replays a promotion, which
// advanced from 20% to 50%, with gates that never pass: the replay holds at
// 20%, which CheckPrefix reports, and stops where the recording ends.
func TestReplayThatMovesTheSplitOtherwiseDiverges(t *testing.T) {
	cfg := Config{PlanYAML: []byte(testPlan), Scenario: sharedScenario(t, "aa-identical"), Seed: 3, Gates: testGates}
	rec, err := Record(context.Background(), cfg, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Result.Outcome != OutcomePromote {
		t.Fatalf("recording: %+v, want a promotion", rec.Result)
	}
	cfg.Signals, cfg.StopAt = rec.World, rec.World.Now()
	cfg.Gates = func(src signals.Source) canary.GateEvaluator { return ratioGate{src: src, never: true} }
	holds, err := Record(context.Background(), cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if holds.Result.Outcome != OutcomeTimeout || !holds.World.Now().Equal(rec.World.Now()) {
		t.Errorf("a replay that never decides: %+v at %s, want a timeout at the recording's end %s",
			holds.Result, holds.World.Now(), rec.World.Now())
	}
	if err := holds.World.CheckPrefix(rec.World); !errors.Is(err, ErrTrafficDiverged) || !strings.Contains(err.Error(), "requests") {
		t.Errorf("a replay that holds at 20%% where the recording advanced: CheckPrefix = %v, want traffic diverged", err)
	}
}
