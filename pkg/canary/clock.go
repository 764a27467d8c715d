package canary

import "time"

// SystemClock is the wall clock. Tests and the simulator inject their own.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// After waits for d of wall time.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
