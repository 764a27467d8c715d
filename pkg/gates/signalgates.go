package gates

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// PSI is the population stability index of the canary's class
// distribution against stable's: Σ (c_i - s_i)·ln(c_i / s_i) over class
// shares, each smoothed by half an observation so that an empty class is
// finite.
func PSI(stable, canaryCounts []float64) float64 {
	k := max(len(stable), len(canaryCounts))
	st, ct := signals.Sum(stable)+0.5*float64(k), signals.Sum(canaryCounts)+0.5*float64(k)
	psi := 0.0
	for i := 0; i < k; i++ {
		s, c := 0.5, 0.5
		if i < len(stable) {
			s += stable[i]
		}
		if i < len(canaryCounts) {
			c += canaryCounts[i]
		}
		ps, pc := s/st, c/ct
		psi += (pc - ps) * math.Log(pc/ps)
	}
	return psi
}

// drift compares prediction classes over the rollout so far: PSI below
// pass succeeds, above fail fails, else Inconclusive.
func drift(d *canary.DriftGate, s *signals.Series, start time.Time) canary.GateResult {
	if last := lastInterval(s); last == nil || last.NoData {
		return canary.GateResult{Verdict: canary.VerdictRunning, Reason: "no metrics for the latest interval; waiting"}
	}
	var st, ca []float64
	for _, iv := range testIntervals(s, start) {
		st = addInto(st, iv.Predictions[signals.Stable])
		ca = addInto(ca, iv.Predictions[signals.Canary])
	}
	n := signals.Sum(ca)
	if n < float64(*d.MinPredictions) || signals.Sum(st) == 0 {
		return canary.GateResult{Verdict: canary.VerdictRunning,
			Reason: fmt.Sprintf("%.0f of %d canary predictions", n, *d.MinPredictions)}
	}
	psi := PSI(st, ca)
	r := canary.GateResult{Value: FormatValue(psi), Condition: fmt.Sprintf("PSI < %g pass, > %g fail", *d.Pass, *d.Fail)}
	reason := fmt.Sprintf("PSI %.3f over %.0f canary predictions", psi, n)
	switch {
	case psi < *d.Pass:
		r.Verdict, r.Reason = canary.VerdictSuccessful, reason
	case psi > *d.Fail:
		r.Verdict, r.Reason = canary.VerdictFailed, reason+fmt.Sprintf(" is above %g", *d.Fail)
	default:
		r.Verdict, r.Reason = canary.VerdictInconclusive, reason+fmt.Sprintf(" is between %g and %g", *d.Pass, *d.Fail)
	}
	return r
}

// gauge bounds a canary gauge and its trend, or fails on any Xid.
func gauge(g *canary.GaugeGate, s *signals.Series, start time.Time) canary.GateResult {
	switch g.Signal {
	case canary.SignalXid:
		return xidGate(g, s, start)
	case canary.SignalECC:
		return eccGate(g, s, start)
	case canary.SignalThrottle:
		return throttleGate(g, s, start)
	}
	ivs := testIntervals(s, start)
	var ts, vs []float64
	for _, iv := range ivs {
		if v := gaugeValue(g.Signal, iv, signals.Canary); !math.IsNaN(v) {
			ts = append(ts, iv.End.Sub(start).Minutes())
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return canary.GateResult{Verdict: canary.VerdictRunning, Reason: "no canary " + g.Signal + " samples yet"}
	}
	cur := vs[len(vs)-1]
	r := canary.GateResult{Value: FormatValue(cur), Condition: gaugeCondition(g)}
	if g.Max != nil && cur > *g.Max {
		r.Verdict, r.Reason = canary.VerdictFailed, fmt.Sprintf("canary %s %.3g is above %g", g.Signal, cur, *g.Max)
		return r
	}
	if g.MaxAboveStable != nil {
		if fr, failed := aboveStable(g, r, ivs); failed {
			return fr
		}
	}
	if len(vs) >= minTrendSamples {
		if fr, failed := trend(g, r, ts, vs); failed {
			return fr
		}
	}
	r.Verdict, r.Reason = canary.VerdictSuccessful, fmt.Sprintf("canary %s %.3g within bounds (%s)", g.Signal, cur, r.Condition)
	return r
}

// gaugeCondition renders a gauge gate's bounds.
func gaugeCondition(g *canary.GaugeGate) string {
	var parts []string
	if g.Max != nil {
		parts = append(parts, fmt.Sprintf("%s ≤ %g", g.Signal, *g.Max))
	}
	if g.MaxAboveStable != nil {
		parts = append(parts, fmt.Sprintf("%s ≤ stable's + %g", g.Signal, *g.MaxAboveStable))
	}
	return strings.Join(parts, ", ")
}

// aboveStableSamples is how many of the latest intervals both sides
// reported MaxAboveStable averages: a minute at the default 10 s step.
const aboveStableSamples = 6

// aboveStable fails r when the canary's gauge, averaged over the latest
// intervals both sides reported, exceeds stable's by more than
// MaxAboveStable.
func aboveStable(g *canary.GaugeGate, r canary.GateResult, ivs []*signals.Interval) (canary.GateResult, bool) {
	var sums [2]float64
	n := 0
	for i := len(ivs) - 1; i >= 0 && n < aboveStableSamples; i-- {
		st, ca := gaugeValue(g.Signal, ivs[i], signals.Stable), gaugeValue(g.Signal, ivs[i], signals.Canary)
		if math.IsNaN(st) || math.IsNaN(ca) {
			continue
		}
		sums[signals.Stable] += st
		sums[signals.Canary] += ca
		n++
	}
	if n < aboveStableSamples/2 {
		return r, false
	}
	st, ca := sums[signals.Stable]/float64(n), sums[signals.Canary]/float64(n)
	if ca-st <= *g.MaxAboveStable {
		return r, false
	}
	r.Verdict = canary.VerdictFailed
	r.Reason = fmt.Sprintf("canary %s %.3g is %.3g above stable's %.3g over its last %d samples, more than %g",
		g.Signal, ca, ca-st, st, n, *g.MaxAboveStable)
	return r, true
}

// minTrendSamples is the fewest samples a trend is fitted to.
const minTrendSamples = 6

// trend fails r when the canary gauge rises faster than MaxRatePerMinute,
// or its projection over Horizon crosses Max.
func trend(g *canary.GaugeGate, r canary.GateResult, ts, vs []float64) (canary.GateResult, bool) {
	cur := vs[len(vs)-1]
	slope := slopePerMinute(ts, vs)
	if m := g.MaxRatePerMinute; m != nil && slope > *m {
		r.Verdict = canary.VerdictFailed
		r.Reason = fmt.Sprintf("canary %s %.3g rising %.3g/min, faster than %g/min", g.Signal, cur, slope, *m)
		return r, true
	}
	if h := g.Horizon; h != nil && h.Duration > 0 && g.Max != nil {
		if proj := cur + slope*h.Duration.Minutes(); proj > *g.Max {
			r.Verdict = canary.VerdictFailed
			r.Reason = fmt.Sprintf("canary %s %.3g rising %.3g/min would pass %g within %s", g.Signal, cur, slope, *g.Max, h.Duration)
			return r, true
		}
	}
	return r, false
}

func gaugeValue(signal string, iv *signals.Interval, side signals.Side) float64 {
	switch signal {
	case canary.SignalKVCache:
		return iv.KVCache[side]
	case canary.SignalQueueDepth:
		return iv.QueueDepth[side]
	case canary.SignalGPUMemory:
		return iv.GPUMemoryUsed[side]
	case canary.SignalGPUTemp:
		return iv.GPUTempC[side]
	}
	return math.NaN()
}

func xidGate(g *canary.GaugeGate, s *signals.Series, start time.Time) canary.GateResult {
	for _, iv := range testIntervals(s, start) {
		for _, code := range iv.Xid[signals.Canary] {
			if len(g.Codes) == 0 || slices.Contains(g.Codes, code) {
				return canary.GateResult{Verdict: canary.VerdictFailed, Value: fmt.Sprint(code),
					Reason: fmt.Sprintf("canary GPU raised Xid %d at %s", code, iv.End.UTC().Format(time.RFC3339))}
			}
		}
	}
	return canary.GateResult{Verdict: canary.VerdictSuccessful, Reason: "no Xid on the canary's GPUs"}
}

// slopePerMinute is the least-squares slope of the last 30 points.
func slopePerMinute(ts, vs []float64) float64 {
	if len(ts) > 30 {
		ts, vs = ts[len(ts)-30:], vs[len(vs)-30:]
	}
	n := float64(len(ts))
	var st, sv, stt, stv float64
	for i := range ts {
		st += ts[i]
		sv += vs[i]
		stt += ts[i] * ts[i]
		stv += ts[i] * vs[i]
	}
	den := n*stt - st*st
	if den == 0 {
		return 0
	}
	return (n*stv - st*sv) / den
}
