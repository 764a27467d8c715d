// Package signals is the neutral form of what canary-vs-stable gates judge:
// per-interval increments of requests, errors and histograms, and gauges,
// for the stable and the canary side. Two sources produce it: Prometheus
// (through a preset's metric names and label selectors) and the simulator
// (in memory). Gates read only this form, so the same gate code decides on
// real and on simulated traffic.
package signals

import (
	"context"
	"math"
	"time"
)

// Side indexes the two sides of a split.
type Side int

// Sides.
const (
	Stable Side = 0
	Canary Side = 1
)

// String names the side.
func (s Side) String() string {
	if s == Canary {
		return "canary"
	}
	return "stable"
}

// Interval holds what happened in (Start, End]. Counts are increments, not
// cumulative values. Histogram slices hold non-cumulative bucket counts,
// one per bound of the Series plus a last +Inf bucket; nil when the side
// reported none.
type Interval struct {
	Start, End time.Time
	// NoData: the metrics backend answered nothing for this interval. Gates
	// must neither pass nor fail on it.
	NoData      bool
	Requests    [2]float64
	Errors      [2]float64
	Latency     [2][]float64
	TTFT        [2][]float64
	TPOT        [2][]float64
	Predictions [2][]float64
	// Counters are the increments of further counters by signal name
	// (a key of a signals spec's metrics, e.g. conversions), for the
	// judge's guardrails; nil when none was read.
	Counters map[string][2]float64
	// Gauges, sampled at End; NaN when the side reported none.
	KVCache       [2]float64
	QueueDepth    [2]float64
	GPUMemoryUsed [2]float64 // fraction of the GPU's memory, 0..1
	GPUTempC      [2]float64
	// Xid lists the Xid error codes raised in the interval.
	Xid [2][]int
	// ECCUncorrected counts the uncorrected ECC errors raised in the
	// interval; NaN when the side reported none.
	ECCUncorrected [2]float64
	// Throttle names the NVML clock event reasons active at End (see
	// pkg/gpu/clockevent); nil when the side reported none, empty when
	// none was active.
	Throttle [2][]string
}

// Series is a run of consecutive intervals and the bucket bounds of their
// histograms.
type Series struct {
	LatencyBounds []float64
	TTFTBounds    []float64
	TPOTBounds    []float64
	Intervals     []Interval
}

// Source reads the intervals (start, start+step], …, up to end.
type Source interface {
	Read(ctx context.Context, start, end time.Time, step time.Duration) (*Series, error)
}

// NaN2 is a pair of absent gauge values.
func NaN2() [2]float64 { return [2]float64{math.NaN(), math.NaN()} }

// Sum returns the total of a slice.
func Sum(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}
