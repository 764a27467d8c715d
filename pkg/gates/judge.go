package gates

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// DefaultLookback is how much stable history before the rollout the judge
// reads to fix its latency thresholds.
const DefaultLookback = 10 * time.Minute

// SignalGates evaluates judge, drift and gauge gates over signals. It is
// stateless: every call re-reads the window from the source and recomputes
// the verdict, so a restart changes nothing.
type SignalGates struct {
	// SourceFor returns the source a gate's signals spec names.
	SourceFor func(spec *canary.SignalsSpec) (signals.Source, error)
	// Lookback defaults to DefaultLookback.
	Lookback time.Duration
}

var _ canary.GateEvaluator = (*SignalGates)(nil)

// Evaluate dispatches on the gate type.
func (g *SignalGates) Evaluate(ctx context.Context, gate canary.GateSpec, w canary.Window) (canary.GateResult, error) {
	if gate.Signals == nil || gate.Signals.Step == nil {
		return canary.GateResult{}, canary.Terminalf("gate %s: no signals configured", gate.Name)
	}
	spec := gate.Signals
	if spec.GPU != nil && (gate.Gauge == nil || !canary.GPUSignal(gate.Gauge.Signal)) {
		noGPU := *spec // only GPU gauges read the GPUs
		noGPU.GPU = nil
		spec = &noGPU
	}
	src, err := g.SourceFor(spec)
	if err != nil {
		return canary.GateResult{}, fmt.Errorf("gate %s: %w", gate.Name, err)
	}
	start := w.RolloutStart
	if start.IsZero() {
		start = w.Start
	}
	lookback := g.Lookback
	if lookback <= 0 {
		lookback = DefaultLookback
	}
	step := gate.Signals.Step.Duration
	series, err := src.Read(ctx, start.Add(-lookback), w.Now, step)
	if err != nil {
		return canary.GateResult{}, fmt.Errorf("gate %s: read signals: %w", gate.Name, err)
	}
	var r canary.GateResult
	switch {
	case gate.Judge != nil:
		r = judge(gate.Judge, series, start, w)
	case gate.Drift != nil:
		r = drift(gate.Drift, series, start)
	case gate.Gauge != nil:
		r = gauge(gate.Gauge, series, start)
	default:
		return canary.GateResult{}, canary.Terminalf("gate %s: type %q is not a signal gate", gate.Name, gate.Type)
	}
	r.Gate = gate.Name
	if r.Verdict == canary.VerdictRunning && r.NextAt.IsZero() {
		r.NextAt = w.Now.Add(step)
	}
	return r, nil
}

// skipped is metricCounts' answer for a metric no side reports.
const skipped = "skipped"

// metricVerdict is one judge metric's outcome.
type metricVerdict struct {
	metric  string
	verdict canary.Verdict
	detail  string
}

// judge runs the sequential tests of every metric over the rollout so far.
func judge(j *canary.JudgeGate, s *signals.Series, start time.Time, w canary.Window) canary.GateResult {
	if last := lastInterval(s); last == nil || last.NoData {
		return canary.GateResult{Verdict: canary.VerdictRunning, Reason: "no metrics for the latest interval; waiting"}
	}
	first, ok := firstCanaryTraffic(s, start)
	if !ok {
		return canary.GateResult{Verdict: canary.VerdictRunning, Reason: "the canary has served no requests yet"}
	}
	testFrom := first.Add(j.Warmup.Duration)
	shares := alphaShares(slices.Concat(j.Metrics, burstNames(j.Metrics), guardrailNames(j)))
	passing := len(j.Guardrails) // the metrics and guardrails that must pass share β
	for _, m := range j.Metrics {
		if !canary.FailOnly(m) {
			passing++
		}
	}
	var results []metricVerdict
	for _, m := range j.Metrics {
		d, why := metricCounts(m, s, start, testFrom)
		if why == skipped {
			// Neither side reports the metric (a model without TTFT, say):
			// there is nothing to judge, and nothing to wait for.
			results = append(results, metricVerdict{m, canary.VerdictSuccessful, m + ": not reported by either side; skipped"})
			continue
		}
		if d.counts == nil {
			results = append(results, metricVerdict{m, canary.VerdictRunning, why})
			continue
		}
		results = append(results, judgeMetric(j, m, s, testFrom, d, *j.Alpha*shares[m], *j.Beta/float64(passing)))
	}
	results = append(results, guardrails(j, s, testFrom, shares, passing)...)
	results = append(results, burstVerdicts(j, s, start, first, testFrom, shares)...)
	if mv, ok := watching(j, first, w.Now); ok {
		results = append(results, mv)
	}
	stepRequests := canaryRequests(s, w.Start)
	return combineMetrics(results, stepRequests, *j.MinCanaryRequests)
}

// judgeMetric runs one metric's tests on its counts and reports its
// verdict, with the effect estimate and bounds when it decided.
func judgeMetric(j *canary.JudgeGate, m string, s *signals.Series, testFrom time.Time, d metricData, alpha, beta float64) metricVerdict {
	var p RatioPath
	switch {
	case m == canary.MetricErrors:
		p = RunRatioTests(d.counts, alpha, beta, j.Margins[m])
	case d.levels != nil: // seqordinal.go
		p = RunOrdinalExceedanceTests(d.levels, d.counts, alpha, beta, j.Margins[m], d.share)
	default: // exceedances: seqodds.go
		p = RunExceedanceTests(d.counts, alpha, beta, j.Margins[m], d.share)
	}
	boundAt, bound := -1, 0.0
	if m == canary.MetricErrors && *j.ErrorRateFloor > 0 {
		bound = math.Max(*j.ErrorRateFloor, j.Margins[m]*stableRate(s, testFrom))
		boundAt, _ = RunRateBound(d.counts, bound, beta)
	}
	mv := assessRatio(m, p, float64(*j.Exposure), boundAt, bound)
	if mv.verdict != canary.VerdictRunning {
		est, lo, hi := estimateMetric(m, d, mv.verdict, p.WorseAt, alpha)
		mv.detail = withEstimate(mv.detail, est, lo, hi)
	} else {
		mv.detail = strings.Replace(mv.detail, " {estimate}", "", 1)
	}
	switch {
	case canary.FailOnly(m) && mv.verdict != canary.VerdictFailed:
		mv.verdict, mv.detail = canary.VerdictSuccessful, "no evidence of a worse tail: "+strings.TrimPrefix(strings.TrimPrefix(mv.detail, "collecting: "), "not worse: ")
	case j.Mode == canary.JudgeScreen && mv.verdict == canary.VerdictRunning:
		mv.verdict, mv.detail = canary.VerdictSuccessful, "no evidence of harm yet: "+mv.detail
	}
	return mv
}

// estimateMetric is the effect estimate and bounds reported with a
// verdict, from the law of the test that decided it: errors' rate ratio,
// or the exceedances' odds ratio read as a rate ratio at stable's share
// (on the Worse test's continuation tables when the canary was worse). A
// Failed verdict reports the evidence as it crossed, up to worseAt.
func estimateMetric(m string, d metricData, v canary.Verdict, worseAt int, alpha float64) (est, lo, hi float64) {
	failed := v == canary.VerdictFailed && worseAt >= 0
	counts, levels := d.counts, d.levels
	if failed {
		counts = counts[:worseAt+1]
		if levels != nil {
			levels = levels[:worseAt+1]
		}
	}
	switch {
	case m == canary.MetricErrors:
		return Estimate(counts, alpha)
	case failed && levels != nil:
		return EstimateOrdinal(levels, alpha, d.share)
	}
	return EstimateExceedances(counts, alpha, d.share)
}

// alphaShares splits the false-revert budget across metrics (Bonferroni,
// weighted): errors get half the share of a latency metric. This is a
// policy choice, measured rather than derived: in the simulated suite the
// errors test runs close to its nominal level (events are few and each one
// moves the e-value a lot) while the latency tests run far below theirs,
// so an equal split spends most of the real false-revert risk on errors.
func alphaShares(metrics []string) map[string]float64 {
	w := map[string]float64{}
	total := 0.0
	for _, m := range metrics {
		switch m {
		case canary.MetricErrors:
			w[m] = 1
		case canary.MetricLatencyTail:
			w[m] = 0.5
		case burstErrors, burstLatency: // seqdetect.go
			w[m] = 0.5
		default:
			w[m] = 2
		}
		total += w[m]
	}
	for m := range w {
		w[m] /= total
	}
	return w
}

// assessRatio turns a test path into a verdict: the first test to cross
// decides; with no crossing, enough exposure without harm passes.
func assessRatio(m string, p RatioPath, exposure float64, boundAt int, bound float64) metricVerdict {
	detail := fmt.Sprintf("%s ratio {estimate} over %.0f canary / %.0f stable requests (e %.3g)",
		m, p.RequestsC, p.RequestsS, p.WorseE)
	passAt := p.NotWorseAt
	if boundAt >= 0 && (passAt < 0 || boundAt < passAt) {
		passAt = boundAt
		detail = fmt.Sprintf("canary rate %.3g%% below %.3g%%; %s", 100*p.EventsC/p.RequestsC, 100*bound, detail)
	}
	switch {
	case p.WorseAt >= 0 && (passAt < 0 || p.WorseAt <= passAt):
		return metricVerdict{m, canary.VerdictFailed, "canary worse: " + detail}
	case passAt >= 0:
		return metricVerdict{m, canary.VerdictSuccessful, "not worse: " + detail}
	case exposure > 0 && p.RequestsC >= exposure:
		return metricVerdict{m, canary.VerdictSuccessful, fmt.Sprintf("no harm after %.0f canary requests: %s", p.RequestsC, detail)}
	}
	return metricVerdict{m, canary.VerdictRunning, "collecting: " + detail}
}

func combineMetrics(rs []metricVerdict, stepRequests float64, minStep int) canary.GateResult {
	var parts []string
	v := canary.VerdictSuccessful
	for _, r := range rs {
		parts = append(parts, r.detail)
		switch {
		case r.verdict == canary.VerdictFailed:
			return canary.GateResult{Verdict: canary.VerdictFailed, Value: r.metric, Reason: r.detail}
		case r.verdict != canary.VerdictSuccessful:
			v = canary.VerdictRunning
		}
	}
	if v == canary.VerdictSuccessful && stepRequests < float64(minStep) {
		v = canary.VerdictRunning
		parts = append(parts, fmt.Sprintf("step has %.0f of %d canary requests", stepRequests, minStep))
	}
	return canary.GateResult{Verdict: v, Reason: strings.Join(parts, "; ")}
}

// metricData is a judge metric's per-interval counts.
type metricData struct {
	// counts split each interval at the metric's threshold (errors: the
	// errors themselves).
	counts []Counts
	// levels are each interval's continuation tables at levelCuts, for
	// the latency Worse test (seqordinal.go); nil for errors and latencyTail.
	levels [][]Counts
	// share is stable's exceedance share before the test window (NaN for
	// errors).
	share float64
	// ref is stable's histogram before the test window, k the bucket of
	// the threshold in it, and hists the test intervals' histograms
	// (stable, canary), for the latency burst detector's tables; empty for
	// errors.
	ref   []float64
	k     int
	hists [][2][]float64
}

// metricCounts slices the series into the tests' per-interval counts, or
// says why it cannot yet.
func metricCounts(m string, s *signals.Series, start, testFrom time.Time) (metricData, string) {
	var hist func(iv *signals.Interval) [2][]float64
	switch m {
	case canary.MetricErrors:
		var out []Counts
		for _, iv := range testIntervals(s, testFrom) {
			out = append(out, Counts{RequestsS: iv.Requests[0], RequestsC: iv.Requests[1], EventsS: iv.Errors[0], EventsC: iv.Errors[1]})
		}
		return metricData{counts: out, share: math.NaN()}, ""
	case canary.MetricLatency, canary.MetricLatencyTail:
		hist = func(iv *signals.Interval) [2][]float64 { return iv.Latency }
	case canary.MetricTTFT:
		hist = func(iv *signals.Interval) [2][]float64 { return iv.TTFT }
	case canary.MetricTPOT:
		hist = func(iv *signals.Interval) [2][]float64 { return iv.TPOT }
	default:
		return metricData{}, fmt.Sprintf("unknown metric %q", m)
	}
	// The thresholds come from stable's histogram before the test begins,
	// so they do not depend on the data the test judges.
	var ref []float64
	reported := false
	for i := range s.Intervals {
		iv := &s.Intervals[i]
		h := hist(iv)
		reported = reported || signals.Sum(h[0]) > 0 || signals.Sum(h[1]) > 0
		if !iv.End.After(testFrom) && !iv.NoData {
			ref = addInto(ref, h[signals.Stable])
		}
	}
	if !reported {
		return metricData{}, skipped
	}
	q := 0.5
	if m == canary.MetricLatencyTail {
		q = tailQuantile
	}
	k, ok := quantileBucket(ref, q)
	if !ok {
		return metricData{}, fmt.Sprintf("%s: no stable history before the test window", m)
	}
	d := metricData{share: above(ref, k) / signals.Sum(ref), ref: ref, k: k}
	var cuts []int
	if m != canary.MetricLatencyTail {
		cuts = levelCuts(ref, k)
	}
	for _, iv := range testIntervals(s, testFrom) {
		h := hist(iv)
		d.counts = append(d.counts, Counts{
			RequestsS: signals.Sum(h[0]), RequestsC: signals.Sum(h[1]),
			EventsS: above(h[0], k), EventsC: above(h[1], k),
		})
		if cuts != nil {
			d.levels = append(d.levels, continuationTables(h, cuts))
		}
		d.hists = append(d.hists, h)
	}
	return d, ""
}

func testIntervals(s *signals.Series, from time.Time) []*signals.Interval {
	var out []*signals.Interval
	for i := range s.Intervals {
		iv := &s.Intervals[i]
		if iv.Start.Before(from) || iv.NoData {
			continue
		}
		out = append(out, iv)
	}
	return out
}

// tailQuantile is the share of stable's requests at or below the bound
// the latencyTail test counts exceedances of.
const tailQuantile = 0.95

// medianBucket is the index k of the bucket whose upper bound splits the
// observations closest to half and half: events are then observations
// above bound k, about half of stable's, which is where the test learns
// most per request about a shift.
func medianBucket(counts []float64) (int, bool) { return quantileBucket(counts, 0.5) }

// quantileBucket is the index k of the bucket whose upper bound has the
// share of the observations closest to q at or below it.
func quantileBucket(counts []float64, q float64) (int, bool) {
	total := signals.Sum(counts)
	if total <= 0 {
		return 0, false
	}
	best, bestGap, cum := 0, math.Inf(1), 0.0
	for k, c := range counts[:max(len(counts)-1, 1)] {
		cum += c
		if gap := math.Abs(cum/total - q); gap < bestGap {
			best, bestGap = k, gap
		}
	}
	return best, true
}

// above counts observations in buckets after k.
func above(counts []float64, k int) float64 {
	if k+1 >= len(counts) {
		return 0
	}
	return signals.Sum(counts[k+1:])
}

func addInto(acc, xs []float64) []float64 {
	if len(acc) < len(xs) {
		acc = append(acc, make([]float64, len(xs)-len(acc))...)
	}
	for i, x := range xs {
		acc[i] += x
	}
	return acc
}

func lastInterval(s *signals.Series) *signals.Interval {
	if len(s.Intervals) == 0 {
		return nil
	}
	return &s.Intervals[len(s.Intervals)-1]
}

// firstCanaryTraffic is the start of the first interval after start in
// which the canary served requests.
func firstCanaryTraffic(s *signals.Series, start time.Time) (time.Time, bool) {
	for _, iv := range s.Intervals {
		if iv.End.After(start) && iv.Requests[signals.Canary] > 0 {
			return iv.Start, true
		}
	}
	return time.Time{}, false
}

// stableRate is stable's error rate before the test window.
func stableRate(s *signals.Series, before time.Time) float64 {
	var req, errs float64
	for _, iv := range s.Intervals {
		if iv.End.After(before) || iv.NoData {
			continue
		}
		req += iv.Requests[signals.Stable]
		errs += iv.Errors[signals.Stable]
	}
	if req <= 0 {
		return 0
	}
	return errs / req
}

// canaryRequests counts canary requests in intervals starting at or after from.
func canaryRequests(s *signals.Series, from time.Time) float64 {
	n := 0.0
	for _, iv := range s.Intervals {
		if !iv.Start.Before(from) && !math.IsNaN(iv.Requests[signals.Canary]) {
			n += iv.Requests[signals.Canary]
		}
	}
	return n
}
