package notify

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// CheckFunc looks at a registry once and reports whether something changed
// that the engine should see now.
type CheckFunc func(ctx context.Context) (changed bool, err error)

// Poller calls Check every Interval, spread by Jitter, and calls Wake when
// it reports a change. After a failure it backs off exponentially from
// Interval up to MaxBackoff; a success resets the backoff.
type Poller struct {
	Check CheckFunc
	Wake  func()
	// Interval is the wait between successful checks; required.
	Interval time.Duration
	// Jitter spreads each wait uniformly over ±Jitter×wait, 0 ≤ Jitter < 1,
	// so that many bots do not poll one registry in step.
	Jitter float64
	// MaxBackoff caps the wait after failures; 16×Interval when zero.
	MaxBackoff time.Duration
	// Rand returns a number in [0, 1); it drives the jitter. Inject a seeded
	// source in tests; when nil there is no jitter.
	Rand  func() float64
	Clock canary.Clock
	Log   *slog.Logger
}

// Run checks until ctx is done and returns ctx's error. Check errors are
// logged and retried with backoff, never returned.
func (p *Poller) Run(ctx context.Context) error {
	if p.Interval <= 0 || p.Check == nil || p.Wake == nil || p.Clock == nil {
		return errors.New("poller: Interval, Check, Wake and Clock are required")
	}
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	failures := 0
	for {
		changed, err := p.Check(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			failures++
			log.Warn("registry check failed; backing off", "err", err, "failures", failures)
		default:
			failures = 0
			if changed {
				p.Wake()
			}
		}
		r := 0.5
		if p.Rand != nil {
			r = p.Rand()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.Clock.After(NextDelay(p.Interval, p.MaxBackoff, p.Jitter, failures, r)):
		}
	}
}

// NextDelay is the wait before the next check: interval after a success,
// interval×2^failures capped at maxBackoff (16×interval when zero) after
// failures, then spread by ±jitter using r in [0, 1) (r = 0.5 is no
// spread). It is pure.
func NextDelay(interval, maxBackoff time.Duration, jitter float64, failures int, r float64) time.Duration {
	if maxBackoff <= 0 {
		maxBackoff = 16 * interval
	}
	d := interval
	for i := 0; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	jitter = min(max(jitter, 0), 0.99)
	r = min(max(r, 0), 1)
	return time.Duration(float64(d) * (1 + jitter*(2*r-1)))
}

// LatestChanged is a CheckFunc that asks src for plan's latest artifact
// and reports a change whenever its URI differs from the last answer. The
// first successful answer that proposes an artifact counts as a change, so
// a restarted bot looks at once. plan is called on every check, so that
// the caller may reload the plan from Git.
func LatestChanged(src canary.ArtifactSource, plan func(ctx context.Context) (*canary.CanaryPlan, error)) CheckFunc {
	var (
		mu   sync.Mutex
		last string
	)
	return func(ctx context.Context) (bool, error) {
		p, err := plan(ctx)
		if err != nil {
			return false, err
		}
		a, err := src.Latest(ctx, p)
		if err != nil {
			return false, err
		}
		uri := ""
		if a != nil {
			uri = a.URI
		}
		mu.Lock()
		defer mu.Unlock()
		changed := uri != last
		last = uri
		return changed, nil
	}
}
