package gates

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// WithSignals lets threshold gates measure signals (threshold.signal)
// instead of PromQL, from the source a gate's signals spec names.
func WithSignals(sourceFor func(*canary.SignalsSpec) (signals.Source, error)) ThresholdOption {
	return func(t *Threshold) { t.sourceFor = sourceFor }
}

type measureFunc func(ctx context.Context, at time.Time) (canary.Measurement, error)

// measurer returns how to take one measurement of the gate: a PromQL query
// at an instant, or a statistic of signals read once for the whole window.
func (t *Threshold) measurer(ctx context.Context, gate canary.GateSpec, p *thresholdPlan, start, now time.Time) (measureFunc, error) {
	if p.signal == nil {
		if t.querier == nil {
			return nil, canary.Terminalf("gate %s: threshold evaluator has no querier", gate.Name)
		}
		return func(ctx context.Context, at time.Time) (canary.Measurement, error) {
			return t.measure(ctx, gate.Name, p, at)
		}, nil
	}
	if t.sourceFor == nil || gate.Signals == nil || gate.Signals.Step == nil {
		return nil, canary.Terminalf("gate %s: signal thresholds need signals configured", gate.Name)
	}
	src, err := t.sourceFor(gate.Signals)
	if err != nil {
		return nil, fmt.Errorf("gate %s: %w", gate.Name, err)
	}
	window := p.signal.Window.Or(time.Minute)
	series, err := src.Read(ctx, start.Add(-window), now, gate.Signals.Step.Duration)
	if err != nil {
		return nil, fmt.Errorf("gate %s: read signals: %w", gate.Name, err)
	}
	return func(_ context.Context, at time.Time) (canary.Measurement, error) {
		x, ok := SignalValue(series, p.signal.Stat, at.Add(-window), at)
		if !ok {
			return canary.Measurement{At: at, Verdict: canary.VerdictInconclusive,
				Message: fmt.Sprintf("no canary %s data in the %s before %s", p.signal.Stat, window, at.UTC().Format(time.RFC3339))}, nil
		}
		v, msg := p.conds.Judge(x)
		return canary.Measurement{At: at, Verdict: v, Value: FormatValue(x), Message: msg}, nil
	}, nil
}

// SignalValue computes a canary statistic over intervals inside (from, to].
// ok is false when there is no data for it.
func SignalValue(s *signals.Series, stat string, from, to time.Time) (float64, bool) {
	var reqs, errs float64
	var lat, ttft []float64
	gauge, gaugeAt := math.NaN(), time.Time{}
	for i := range s.Intervals {
		iv := &s.Intervals[i]
		if iv.Start.Before(from) || iv.End.After(to) || iv.NoData {
			continue
		}
		reqs += iv.Requests[signals.Canary]
		errs += iv.Errors[signals.Canary]
		lat = addInto(lat, iv.Latency[signals.Canary])
		ttft = addInto(ttft, iv.TTFT[signals.Canary])
		var g float64
		switch stat {
		case canary.StatKVCache:
			g = iv.KVCache[signals.Canary]
		case canary.StatQueueDepth:
			g = iv.QueueDepth[signals.Canary]
		}
		if !math.IsNaN(g) && iv.End.After(gaugeAt) {
			gauge, gaugeAt = g, iv.End
		}
	}
	switch stat {
	case canary.StatErrorRate:
		return errs / reqs, reqs > 0
	case canary.StatLatencyP95:
		return quantile(lat, s.LatencyBounds, 0.95)
	case canary.StatTTFTP95:
		return quantile(ttft, s.TTFTBounds, 0.95)
	case canary.StatKVCache, canary.StatQueueDepth:
		return gauge, !gaugeAt.IsZero()
	}
	return math.NaN(), false
}

// quantile interpolates within buckets as Prometheus' histogram_quantile
// does: linearly between a bucket's lower and upper bound.
func quantile(counts, bounds []float64, q float64) (float64, bool) {
	total := signals.Sum(counts)
	if total <= 0 {
		return math.NaN(), false
	}
	rank, cum := q*total, 0.0
	for k, c := range counts {
		if cum+c >= rank && c > 0 {
			if k >= len(bounds) {
				return bounds[len(bounds)-1], true // +Inf bucket: the highest finite bound
			}
			lo := 0.0
			if k > 0 {
				lo = bounds[k-1]
			}
			return lo + (bounds[k]-lo)*(rank-cum)/c, true
		}
		cum += c
	}
	return bounds[len(bounds)-1], true
}
