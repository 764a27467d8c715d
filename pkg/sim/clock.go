package sim

import (
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Clock is simulated time for the engine: Now is the World's time, and
// After advances the World instead of sleeping.
type Clock struct {
	w *World
	// deadline, when set, is the latest time After advances to. Reaching
	// it, or a world error, stops the clock and calls onStop.
	deadline func() (time.Time, bool)
	onStop   func()

	mu      sync.Mutex
	stopped bool
}

var _ canary.Clock = (*Clock)(nil)

// NewClock returns a clock over w. deadline, when not nil, reports the
// time at which the clock stops; onStop, when not nil, is called when the
// clock stops by itself (deadline reached or world failed).
func NewClock(w *World, deadline func() (time.Time, bool), onStop func()) *Clock {
	return &Clock{w: w, deadline: deadline, onStop: onStop}
}

// Now returns the simulated time.
func (c *Clock) Now() time.Time { return c.w.Now() }

// After advances the world by d, rounded up to whole seconds, with the
// canary weight in force, and returns a channel that has already fired. A
// stopped clock (after Stop, at its deadline, or when the world failed)
// returns a channel that never fires, so that a select on it and a done
// context always picks the context.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	n := ceilSeconds(max(d, 0))
	if c.deadline != nil {
		if at, ok := c.deadline(); ok {
			n = min(n, max(ceilSeconds(at.Sub(c.w.Now())), 0))
		}
	}
	if err := c.w.Advance(n); err != nil {
		c.stopLocked()
		return nil
	}
	if c.deadline != nil {
		if at, ok := c.deadline(); ok && !c.w.Now().Before(at) {
			c.stopLocked()
			return nil
		}
	}
	ch := make(chan time.Time, 1)
	ch <- c.w.Now()
	return ch
}

// Stop makes every later After return a channel that never fires.
func (c *Clock) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
}

// stopLocked stops the clock and tells the owner, who reads a world error,
// if any, from World.Err.
func (c *Clock) stopLocked() {
	c.stopped = true
	if c.onStop != nil {
		c.onStop()
	}
}
