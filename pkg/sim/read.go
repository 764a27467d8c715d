package sim

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/canarybot/canarybot/pkg/signals"
)

var _ signals.Source = (*World)(nil)

// Read re-aggregates the generated seconds into intervals (start,
// start+step], … up to end, or up to now when end is later. Counts and
// histograms are the increments over the interval's whole seconds; gauges
// are those of its last second. An interval is NoData when any of its
// seconds lies before the epoch or in a metrics outage; its counts and
// gauges are then NaN and its histograms and Xids nil. A side's histogram
// is nil until the side reports it (the canary before its first traffic).
func (w *World) Read(ctx context.Context, start, end time.Time, step time.Duration) (*signals.Series, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read simulated signals: %w", err)
	}
	if step < time.Second {
		return nil, fmt.Errorf("read simulated signals: step %s is below the simulator's 1s resolution", step)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if now := w.timeAt(w.now); end.After(now) {
		end = now
	}
	n := 0
	if !end.Before(start) {
		n = int(end.Sub(start) / step)
	}
	s := &signals.Series{
		LatencyBounds: slices.Clone(w.latBounds),
		TTFTBounds:    slices.Clone(w.ttftBounds),
		Intervals:     make([]signals.Interval, n),
	}
	widths := [3]int{len(w.latBounds) + 1, len(w.ttftBounds) + 1, w.nClasses}
	buf := make([]float64, 0, n*2*(widths[0]+widths[1]+widths[2]))
	for i := range s.Intervals {
		iv := &s.Intervals[i]
		iv.Start = start.Add(time.Duration(i) * step)
		iv.End = iv.Start.Add(step)
		iv.ECCUncorrected = signals.NaN2() // scenarios have no ECC counters
		ks, ke := ceilSeconds(iv.Start.Sub(w.epoch)), floorSeconds(iv.End.Sub(w.epoch))
		if ks < 0 || ke <= ks || w.unavail[ke] != w.unavail[ks] {
			noData(iv)
			continue
		}
		buf = w.fill(iv, ks, ke, widths, buf)
		w.fillCounters(iv, ks, ke)
	}
	return s, nil
}

// fill sets one interval from seconds [ks, ke), taking histogram slices
// from buf.
func (w *World) fill(iv *signals.Interval, ks, ke int, widths [3]int, buf []float64) []float64 {
	for side := range w.cum {
		c, g, st := w.cum[side], w.gauges[side], w.sides[side]
		iv.Requests[side] = c.requests[ke] - c.requests[ks]
		iv.Errors[side] = c.errors[ke] - c.errors[ks]
		iv.Latency[side], buf = diff(c.latency, ks, ke, widths[0], st.latFrom, buf)
		iv.TTFT[side], buf = diff(c.ttft, ks, ke, widths[1], st.ttftFrom, buf)
		iv.Predictions[side], buf = diff(c.pred, ks, ke, widths[2], st.predFrom, buf)
		last := ke - 1
		iv.KVCache[side], iv.QueueDepth[side] = g.kv[last], g.queue[last]
		iv.GPUMemoryUsed[side], iv.GPUTempC[side] = g.mem[last], g.temp[last]
	}
	lo, _ := slices.BinarySearchFunc(w.xids, ks, func(e xidEvent, k int) int { return e.sec - k })
	for _, e := range w.xids[lo:] {
		if e.sec >= ke {
			break
		}
		iv.Xid[e.side] = append(iv.Xid[e.side], e.code)
	}
	return buf
}

// diff returns row ke minus row ks of a flattened cumulative series, or nil
// when the side had not reported it by second ke-1.
func diff(cum []float64, ks, ke, width, from int, buf []float64) ([]float64, []float64) {
	if width == 0 || from < 0 || from >= ke {
		return nil, buf
	}
	lo, hi := cum[ks*width:(ks+1)*width], cum[ke*width:(ke+1)*width]
	n := len(buf)
	for j := range width {
		buf = append(buf, hi[j]-lo[j])
	}
	return buf[n : n+width : n+width], buf
}

func noData(iv *signals.Interval) {
	iv.NoData = true
	nan := signals.NaN2()
	iv.Requests, iv.Errors = nan, nan
	iv.KVCache, iv.QueueDepth, iv.GPUMemoryUsed, iv.GPUTempC = nan, nan, nan, nan
}
