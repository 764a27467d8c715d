package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/canarybot/canarybot/pkg/signals"
)

// Recording is an in-memory run and the world it generated: the traffic
// up to the decision (or timeout), then Extra more, so that a replay that
// decides a little later still finds its data.
type Recording struct {
	Result Result
	World  *World
	// Decided is the simulated time of the decision or timeout.
	Decided time.Time
	// Extra is how far the world runs on after Decided.
	Extra time.Duration
}

// Record runs cfg like Run and keeps the world. After a promote or revert
// it advances the world by extra more seconds with the split in force
// before the deciding commit, which is the traffic a replay that has not
// decided yet generates (until it commits a step of its own).
func Record(ctx context.Context, cfg Config, extra time.Duration) (*Recording, error) {
	res, r, err := runWorld(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rec := &Recording{Result: res, World: r.world, Decided: r.world.Now()}
	if res.Outcome == OutcomeTimeout || extra <= 0 {
		return rec, nil
	}
	if r.decisionScheduled {
		r.world.unscheduleLast()
	}
	if err := r.world.Advance(ceilSeconds(extra)); err != nil {
		return nil, fmt.Errorf("scenario %s seed %d: record past the decision: %w", res.Scenario, res.Seed, err)
	}
	rec.Extra = extra
	return rec, nil
}

// unscheduleLast drops the weight change scheduled last. Changes are
// scheduled a fixed sync delay after their commit and sorted stably, so
// the latest commit's change is the last pending one.
func (w *World) unscheduleLast() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.pending); n > 0 {
		w.pending = w.pending[:n-1]
	}
}

// ErrTrafficDiverged means a replay's traffic left its recording: its
// weights changed at other times, or it ran past the recorded seconds.
var ErrTrafficDiverged = errors.New("replay traffic diverged from the recording")

// CheckPrefix reports, wrapping ErrTrafficDiverged, the first second at
// which w's requests or errors, by side, differ from rec's, or that w has
// generated seconds rec has not. Worlds of one scenario and seed draw
// identical traffic for identical weights, so nil means rec held exactly
// w's traffic.
func (w *World) CheckPrefix(rec *World) error {
	if w == rec {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for j := 0; j <= w.now; j++ {
		if j > rec.now {
			return fmt.Errorf("%w: the recording ends at %s, the replay ran to %s",
				ErrTrafficDiverged, rec.timeAt(rec.now).Format(time.TimeOnly), w.timeAt(w.now).Format(time.TimeOnly))
		}
		for side := range w.cum {
			a, b := w.cum[side], rec.cum[side]
			if a.requests[j] != b.requests[j] || a.errors[j] != b.errors[j] {
				return fmt.Errorf("%w: %s requests %v (errors %v) by %s, recorded %v (errors %v)",
					ErrTrafficDiverged, signals.Side(side), a.requests[j], a.errors[j],
					w.timeAt(j).Format(time.TimeOnly), b.requests[j], b.errors[j])
			}
		}
	}
	return nil
}
