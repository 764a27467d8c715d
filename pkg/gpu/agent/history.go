package agent

import (
	"slices"
	"time"

	"github.com/canarybot/canarybot/pkg/gpu"
)

// maxRingSamples bounds the ring whatever the scrape rate: at the default
// 2s cache TTL, 15 minutes of back-to-back scrapes are 450 snapshots.
const maxRingSamples = 4096

// ring keeps the snapshots of the last keep, oldest first. It is not
// safe for concurrent use.
type ring struct {
	keep    time.Duration
	samples []gpu.Snapshot
}

func newRing(keep time.Duration) *ring { return &ring{keep: keep} }

// add appends s and drops what is older than keep before now, or beyond
// maxRingSamples.
func (r *ring) add(s gpu.Snapshot, now time.Time) {
	r.samples = append(r.samples, s)
	r.evict(now)
	if over := len(r.samples) - maxRingSamples; over > 0 {
		r.samples = slices.Delete(r.samples, 0, over)
	}
}

// evict drops the snapshots taken before now-keep.
func (r *ring) evict(now time.Time) {
	cutoff := now.Add(-r.keep)
	i := 0
	for i < len(r.samples) && r.samples[i].Time.Before(cutoff) {
		i++
	}
	r.samples = slices.Delete(r.samples, 0, i)
}

// since returns a copy of the snapshots taken at or after t and not yet
// older than keep at now, oldest first; empty, not nil, when none are.
func (r *ring) since(t, now time.Time) []gpu.Snapshot {
	r.evict(now)
	out := []gpu.Snapshot{}
	for _, s := range r.samples {
		if !s.Time.Before(t) {
			out = append(out, s)
		}
	}
	return out
}
