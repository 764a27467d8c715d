package sim

import (
	"fmt"
	"time"

	"github.com/canarybot/canarybot/pkg/signals"
)

// sideState is one side's running behaviour: its base, the changes that
// target it, and the params in force.
type sideState struct {
	side    signals.Side
	base    Behaviour
	changes []int // indexes into Scenario.Changes
	active  []bool
	started bool
	p       params
	// kvEpoch and memEpoch are the seconds the KV-cache and GPU-memory
	// values in force took effect; growth counts from there.
	kvEpoch, memEpoch int
	// latFrom, ttftFrom and predFrom are the first seconds the side reported
	// each histogram; -1 until it does.
	latFrom, ttftFrom, predFrom int
}

func newSideState(side signals.Side, base Behaviour, sc *Scenario) (*sideState, error) {
	if _, err := resolve(base); err != nil {
		return nil, err
	}
	s := &sideState{side: side, base: base, latFrom: -1, ttftFrom: -1, predFrom: -1}
	for i, c := range sc.Changes {
		if c.Target == side.String() {
			s.changes = append(s.changes, i)
		}
	}
	s.active = make([]bool, len(s.changes))
	return s, nil
}

// update brings the side to second k, since the canary's first traffic
// (when canaryStarted). It returns the Xid codes raised at k: the base's
// when the side starts, and each change's own when it takes effect.
func (s *sideState) update(k int, since time.Duration, canaryStarted bool, sc *Scenario) ([]int, error) {
	var raised []int
	first := !s.started
	if first {
		p, err := resolve(s.base)
		if err != nil {
			return nil, err
		}
		s.started, s.p, s.kvEpoch, s.memEpoch = true, p, k, k
		if g := s.base.GPU; g != nil {
			raised = append(raised, g.Xid...)
		}
	}
	changed := false
	if canaryStarted {
		for j, i := range s.changes {
			c := sc.Changes[i]
			a := c.active(since)
			if a == s.active[j] {
				continue
			}
			changed, s.active[j] = true, a
			if a && c.Set.GPU != nil {
				raised = append(raised, c.Set.GPU.Xid...)
			}
		}
	}
	if changed {
		if err := s.apply(k, sc); err != nil {
			return nil, err
		}
	}
	if first || changed {
		s.markReported(k)
	}
	return raised, nil
}

// apply recomputes the params from the base and the active changes, in
// file order, and restarts a gauge's growth when its values changed.
func (s *sideState) apply(k int, sc *Scenario) error {
	eff := s.base
	for j, i := range s.changes {
		if s.active[j] {
			eff = merge(eff, *sc.Changes[i].Set)
		}
	}
	p, err := resolve(eff)
	if err != nil {
		return fmt.Errorf("with changes %v in force: %w", s.activeIndexes(), err)
	}
	if !same(p.kv, s.p.kv) || !same(p.kvGrowth, s.p.kvGrowth) {
		s.kvEpoch = k
	}
	if !same(p.gpuMem, s.p.gpuMem) || !same(p.gpuMemGrowth, s.p.gpuMemGrowth) {
		s.memEpoch = k
	}
	s.p = p
	return nil
}

func (s *sideState) activeIndexes() []int {
	var out []int
	for j, i := range s.changes {
		if s.active[j] {
			out = append(out, i)
		}
	}
	return out
}

// markReported records the first second each histogram has data.
func (s *sideState) markReported(k int) {
	if s.latFrom < 0 && s.p.latency.ok() {
		s.latFrom = k
	}
	if s.ttftFrom < 0 && s.p.ttft.ok() {
		s.ttftFrom = k
	}
	if s.predFrom < 0 && s.p.classes != nil {
		s.predFrom = k
	}
}

// same compares gauge values, NaN equal to NaN.
func same(a, b float64) bool { return a == b || (a != a && b != b) }
