package gates

import (
	"context"
	"math"
	"strconv"

	"github.com/prometheus/common/model"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gpu/clockevent"
)

// maxXidPerInterval bounds the Xid codes one interval records per series.
const maxXidPerInterval = 16

// steps lays one series' samples out by step; NaN where it has none.
func (r *gpuSide) steps(ss *model.SampleStream) []float64 {
	vals := make([]float64, len(r.s.Intervals)+1)
	for i := range vals {
		vals[i] = math.NaN()
	}
	for _, sp := range ss.Values {
		if k := r.step(sp.Timestamp); k >= 0 {
			vals[k] = float64(sp.Value)
		}
	}
	return vals
}

// increments turns cumulative values into per-step increments: a drop is
// a reset (the increment is the new value), and a step without a sample
// has none. A series' first sample is its baseline when firstIsBaseline
// (a series always exported, e.g. ECC counters); otherwise the series was
// created by its first events and counts from 0 (the agent's Xid
// counters).
func increments(vals []float64, firstIsBaseline bool) []float64 {
	inc := make([]float64, len(vals))
	prev, seen := 0.0, false
	for k, v := range vals {
		inc[k] = math.NaN()
		if math.IsNaN(v) {
			continue
		}
		inc[k] = 0
		if seen || !firstIsBaseline {
			inc[k] = counterIncrease(prev, v)
		}
		prev, seen = v, true
	}
	return inc
}

// counterIncrease is what a counter added from prev to v: a drop is a
// reset (a restarted exporter, a reloaded driver), after which it counted
// v from zero.
func counterIncrease(prev, v float64) float64 {
	if v < prev {
		return v
	}
	return v - prev
}

// counters reads the Xid and uncorrected-ECC series of the side's GPUs and
// records what each owned GPU raised in each interval.
func (r *gpuSide) counters(ctx context.Context, owned []map[string]bool) error {
	m, err := r.query(ctx, r.q.xid)
	if err != nil {
		return err
	}
	for _, ss := range m {
		id := string(ss.Metric[model.LabelName(r.q.uuid)])
		vals := r.steps(ss)
		code := 0
		if !r.q.dcgm {
			if code, err = strconv.Atoi(string(ss.Metric["xid"])); err != nil {
				return canary.Terminalf("xid series %s: label xid %q is not an Xid code", ss.Metric, ss.Metric["xid"])
			}
		}
		inc := increments(vals, r.q.dcgm)
		for k := 1; k < len(vals); k++ {
			if !owned[k][id] || math.IsNaN(inc[k]) || inc[k] == 0 {
				continue
			}
			iv := &r.s.Intervals[k-1]
			if r.q.dcgm { // the last Xid changed: a new one was raised
				if vals[k] != 0 {
					iv.Xid[r.side] = append(iv.Xid[r.side], int(vals[k]))
				}
				continue
			}
			for range min(int(inc[k]), maxXidPerInterval) {
				iv.Xid[r.side] = append(iv.Xid[r.side], code)
			}
		}
	}
	return r.ecc(ctx, owned)
}

func (r *gpuSide) ecc(ctx context.Context, owned []map[string]bool) error {
	m, err := r.query(ctx, r.q.ecc)
	if err != nil {
		return err
	}
	for _, ss := range m {
		id := string(ss.Metric[model.LabelName(r.q.uuid)])
		inc := increments(r.steps(ss), true)
		for k := 1; k < len(inc); k++ {
			if !owned[k][id] || math.IsNaN(inc[k]) {
				continue
			}
			n := &r.s.Intervals[k-1].ECCUncorrected[r.side]
			if math.IsNaN(*n) {
				*n = 0
			}
			*n += inc[k]
		}
	}
	return nil
}

// throttle records the clock event reasons active on the side's GPUs.
func (r *gpuSide) throttle(ctx context.Context) error {
	m, err := r.query(ctx, r.q.throttle)
	if err != nil {
		return err
	}
	masks := make([]uint64, len(r.s.Intervals)+1)
	for _, ss := range m {
		reason := string(ss.Metric["reason"])
		for _, sp := range ss.Values {
			iv := r.interval(sp.Timestamp)
			if iv == nil {
				continue
			}
			k := r.step(sp.Timestamp)
			if iv.Throttle[r.side] == nil {
				iv.Throttle[r.side] = []string{}
			}
			v := float64(sp.Value)
			switch {
			case r.q.dcgm: // dcgm: a bitmask per GPU
				if v > 0 && v < 1<<53 {
					masks[k] |= uint64(v)
				}
			case v >= 0.5:
				iv.Throttle[r.side] = append(iv.Throttle[r.side], reason)
			}
		}
	}
	if r.q.dcgm {
		for k := 1; k < len(masks); k++ {
			if iv := &r.s.Intervals[k-1]; iv.Throttle[r.side] != nil {
				iv.Throttle[r.side] = append(iv.Throttle[r.side], clockevent.Names(masks[k])...)
			}
		}
	}
	return nil
}
