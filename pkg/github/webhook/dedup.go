package webhook

import (
	"sync"
	"time"
)

// Deduper remembers delivery IDs for a while, so that a replayed or
// redelivered delivery does nothing. It is bounded in size and age.
type Deduper struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	now   func() time.Time
	at    map[string]time.Time
	order []string
}

// NewDeduper remembers up to max deliveries for ttl each.
func NewDeduper(max int, ttl time.Duration, now func() time.Time) *Deduper {
	if now == nil {
		now = time.Now
	}
	return &Deduper{ttl: ttl, max: max, now: now, at: map[string]time.Time{}}
}

// Seen reports whether id was marked within the TTL.
func (d *Deduper) Seen(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.at[id]
	return ok && d.now().Sub(t) < d.ttl
}

// Mark records id as handled.
func (d *Deduper) Mark(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.at[id]; !ok {
		d.order = append(d.order, id)
	}
	d.at[id] = d.now()
	for len(d.order) > d.max || (len(d.order) > 0 && d.now().Sub(d.at[d.order[0]]) >= d.ttl) {
		delete(d.at, d.order[0])
		d.order = d.order[1:]
	}
}
