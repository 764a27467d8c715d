package gates

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

var (
	epoch  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	bounds = []float64{0.1, 0.2, 0.3, 0.5, 0.8, 1, 2}
)

// side describes one side's behaviour in a synthetic series.
type side struct {
	errRate, median, sigma, kv float64
	classes                    []float64
	xidAt                      time.Duration
}

// seriesFn is a signals.Source over a generated series.
type seriesFn func(start, end time.Time, step time.Duration) *signals.Series

func (f seriesFn) Read(_ context.Context, start, end time.Time, step time.Duration) (*signals.Series, error) {
	return f(start, end, step), nil
}

// synth generates 10s intervals: stable only before rolloutStart, then the
// canary at the given share.
func synth(seed uint64, rps, share float64, st, ca side, rolloutStart time.Time) seriesFn {
	return func(start, end time.Time, step time.Duration) *signals.Series {
		rnd := rand.New(rand.NewPCG(seed, 1))
		s := &signals.Series{LatencyBounds: bounds, TTFTBounds: bounds}
		for t := epoch; t.Before(end); t = t.Add(step) {
			iv := signals.Interval{Start: t, End: t.Add(step), KVCache: signals.NaN2(), QueueDepth: signals.NaN2(),
				GPUMemoryUsed: signals.NaN2(), GPUTempC: signals.NaN2()}
			c := 0.0
			if !t.Before(rolloutStart) {
				c = share
			}
			for k, sd := range []side{st, ca} {
				frac := 1 - c
				if k == 1 {
					frac = c
				}
				n := poisson(rnd, rps*frac*step.Seconds())
				iv.Requests[k] = n
				iv.Errors[k] = binomial(rnd, n, sd.errRate)
				iv.Latency[k] = make([]float64, len(bounds)+1)
				iv.Predictions[k] = make([]float64, len(sd.classes))
				for i := 0.0; i < n; i++ {
					x := sd.median * math.Exp(sd.sigma*rnd.NormFloat64())
					b := len(bounds)
					for j, ub := range bounds {
						if x <= ub {
							b = j
							break
						}
					}
					iv.Latency[k][b]++
					if len(sd.classes) > 0 {
						iv.Predictions[k][pick(rnd, sd.classes)]++
					}
				}
				if n > 0 && sd.kv > 0 {
					iv.KVCache[k] = sd.kv + 0.06*t.Sub(rolloutStart).Minutes()*boolf(k == 1 && sd.kv > 0.5)
				}
				if sd.xidAt > 0 && k == 1 && !t.Before(rolloutStart.Add(sd.xidAt)) && t.Before(rolloutStart.Add(sd.xidAt+step)) {
					iv.Xid[k] = []int{79}
				}
			}
			if !iv.End.After(start) {
				continue
			}
			s.Intervals = append(s.Intervals, iv)
		}
		return s
	}
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func pick(rnd *rand.Rand, w []float64) int {
	x := rnd.Float64() * signals.Sum(w)
	for i, v := range w {
		if x < v {
			return i
		}
		x -= v
	}
	return len(w) - 1
}

func judgeGate(metrics ...string) canary.GateSpec {
	p := &canary.CanaryPlan{Spec: canary.PlanSpec{
		Signals: &canary.SignalsSpec{Preset: canary.PresetVLLM, Stable: map[string]string{"role": "stable"}, Canary: map[string]string{"role": "canary"}},
		Gates:   []canary.GateSpec{{Name: "judge", Judge: &canary.JudgeGate{Metrics: metrics}}},
	}}
	p.Default()
	return p.Spec.Gates[0]
}

// runJudge evaluates the gate every step until it decides or maxDur passes.
func runJudge(t *testing.T, gate canary.GateSpec, src signals.Source, rolloutStart time.Time, maxDur time.Duration) (canary.GateResult, time.Duration) {
	t.Helper()
	g := &SignalGates{SourceFor: func(*canary.SignalsSpec) (signals.Source, error) { return src, nil }}
	for now := rolloutStart.Add(10 * time.Second); !now.After(rolloutStart.Add(maxDur)); now = now.Add(10 * time.Second) {
		r, err := g.Evaluate(context.Background(), gate, canary.Window{Start: rolloutStart, Now: now, RolloutStart: rolloutStart})
		if err != nil {
			t.Fatal(err)
		}
		if r.Verdict != canary.VerdictRunning {
			return r, now.Sub(rolloutStart)
		}
	}
	return canary.GateResult{Verdict: canary.VerdictRunning}, maxDur
}

func TestJudgeVerdicts(t *testing.T) {
	start := epoch.Add(10 * time.Minute)
	base := side{errRate: 0.001, median: 0.3, sigma: 0.5}
	cases := []struct {
		name   string
		canary side
		want   canary.Verdict
		metric string
	}{
		{"identical builds pass", base, canary.VerdictSuccessful, ""},
		{"40% slower fails on latency", side{errRate: 0.001, median: 0.42, sigma: 0.5}, canary.VerdictFailed, "latency"},
		{"10x errors fail on errors", side{errRate: 0.01, median: 0.3, sigma: 0.5}, canary.VerdictFailed, "errors"},
		{"a faster canary passes", side{errRate: 0.001, median: 0.24, sigma: 0.5}, canary.VerdictSuccessful, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := synth(42, 20, 0.3, base, tc.canary, start)
			r, after := runJudge(t, judgeGate("errors", "latency"), src, start, 45*time.Minute)
			if r.Verdict != tc.want || !strings.Contains(r.Value, tc.metric) {
				t.Fatalf("verdict %s (%s) after %s, want %s on %q", r.Verdict, r.Reason, after, tc.want, tc.metric)
			}
			if !strings.Contains(r.Reason, "ratio") || !strings.Contains(r.Reason, "[") {
				t.Errorf("verdict carries no effect estimate with bounds: %s", r.Reason)
			}
		})
	}
}

func TestJudgeWaitsOutWarmupAndOutages(t *testing.T) {
	start := epoch.Add(10 * time.Minute)
	base := side{errRate: 0.001, median: 0.3, sigma: 0.5}
	src := synth(1, 20, 0.3, base, base, start)
	g := &SignalGates{SourceFor: func(*canary.SignalsSpec) (signals.Source, error) {
		return seriesFn(func(a, b time.Time, step time.Duration) *signals.Series {
			s, _ := src.Read(context.Background(), a, b, step)
			last := &s.Intervals[len(s.Intervals)-1]
			last.NoData = true
			return s
		}), nil
	}}
	r, err := g.Evaluate(context.Background(), judgeGate("errors"), canary.Window{Start: start, Now: start.Add(30 * time.Minute), RolloutStart: start})
	if err != nil || r.Verdict != canary.VerdictRunning || !strings.Contains(r.Reason, "no metrics") {
		t.Errorf("during an outage: %s %q %v", r.Verdict, r.Reason, err)
	}
	// Within the warm-up nothing is judged.
	r, _ = (&SignalGates{SourceFor: func(*canary.SignalsSpec) (signals.Source, error) { return src, nil }}).Evaluate(
		context.Background(), judgeGate("latency"), canary.Window{Start: start, Now: start.Add(time.Minute), RolloutStart: start})
	if r.Verdict != canary.VerdictRunning {
		t.Errorf("within the warm-up: %s %q", r.Verdict, r.Reason)
	}
}

func TestDriftAndGaugeGates(t *testing.T) {
	start := epoch.Add(10 * time.Minute)
	st := side{errRate: 0.001, median: 0.02, sigma: 0.3, kv: 0.35, classes: []float64{0.97, 0.03}}
	drifted := st
	drifted.classes = []float64{0.8, 0.2}
	w := canary.Window{Start: start, Now: start.Add(10 * time.Minute), RolloutStart: start}
	eval := func(gate canary.GateSpec, src signals.Source) canary.GateResult {
		g := &SignalGates{SourceFor: func(*canary.SignalsSpec) (signals.Source, error) { return src, nil }}
		r, err := g.Evaluate(context.Background(), gate, w)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	spec := func(g canary.GateSpec) canary.GateSpec {
		p := &canary.CanaryPlan{Spec: canary.PlanSpec{Signals: judgeGate().Signals, Gates: []canary.GateSpec{g}}}
		p.Default()
		return p.Spec.Gates[0]
	}
	driftGate := spec(canary.GateSpec{Name: "drift", Drift: &canary.DriftGate{}})
	if r := eval(driftGate, synth(2, 50, 0.3, st, drifted, start)); r.Verdict != canary.VerdictFailed {
		t.Errorf("PSI ≈ 0.35 must fail: %s %s", r.Verdict, r.Reason)
	}
	if r := eval(driftGate, synth(2, 50, 0.3, st, st, start)); r.Verdict != canary.VerdictSuccessful {
		t.Errorf("same classes must pass: %s %s", r.Verdict, r.Reason)
	}
	kv := spec(canary.GateSpec{Name: "kv", Gauge: &canary.GaugeGate{Signal: canary.SignalKVCache, Horizon: canary.D(10 * time.Minute)}})
	rising := st
	rising.kv = 0.55
	w.Now = start.Add(3 * time.Minute) // 0.73 now, but 1.3 in ten minutes
	if r := eval(kv, synth(3, 10, 0.3, st, rising, start)); r.Verdict != canary.VerdictFailed || !strings.Contains(r.Reason, "rising") {
		t.Errorf("KV cache rising 6 points a minute must fail: %s %s", r.Verdict, r.Reason)
	}
	if r := eval(kv, synth(3, 10, 0.3, st, st, start)); r.Verdict != canary.VerdictSuccessful {
		t.Errorf("flat KV cache must pass: %s %s", r.Verdict, r.Reason)
	}
	xid := spec(canary.GateSpec{Name: "xid", Gauge: &canary.GaugeGate{Signal: canary.SignalXid, Codes: []int{79, 48}}})
	faulty := st
	faulty.xidAt = 6 * time.Minute
	w.Now = start.Add(10 * time.Minute)
	if r := eval(xid, synth(4, 10, 0.3, st, faulty, start)); r.Verdict != canary.VerdictFailed || r.Value != "79" {
		t.Errorf("Xid 79 must fail: %s %s", r.Verdict, r.Reason)
	}
}

func TestPSI(t *testing.T) {
	if v := PSI([]float64{970, 30}, []float64{800, 200}); math.Abs(v-0.35) > 0.05 {
		t.Errorf("PSI = %.3f, want about 0.35", v)
	}
	if v := PSI([]float64{700, 200, 100}, []float64{700, 200, 100}); v != 0 {
		t.Errorf("identical PSI = %g", v)
	}
}

func TestMedianBucketSplitsClosestToHalf(t *testing.T) {
	for _, tc := range []struct {
		counts []float64
		want   int
	}{
		{[]float64{49, 31, 20}, 0}, // 49% at or below bound 0: closer to half than 80%
		{[]float64{10, 30, 60}, 1},
		{[]float64{0, 0, 5}, 0},
	} {
		if k, ok := medianBucket(tc.counts); !ok || k != tc.want {
			t.Errorf("medianBucket(%v) = %d, want %d", tc.counts, k, tc.want)
		}
	}
}

func TestAlphaSharesSumToOne(t *testing.T) {
	sh := alphaShares([]string{canary.MetricErrors, canary.MetricLatency, canary.MetricTTFT})
	if math.Abs(sh[canary.MetricErrors]-0.2) > 1e-12 || math.Abs(sh[canary.MetricLatency]-0.4) > 1e-12 ||
		math.Abs(sh[canary.MetricErrors]+sh[canary.MetricLatency]+sh[canary.MetricTTFT]-1) > 1e-12 {
		t.Errorf("shares = %v", sh)
	}
	sh = alphaShares([]string{canary.MetricErrors, canary.MetricLatency, canary.MetricLatencyTail})
	if math.Abs(sh[canary.MetricLatencyTail]-0.5/3.5) > 1e-12 || math.Abs(sh[canary.MetricLatency]-2/3.5) > 1e-12 {
		t.Errorf("the fail-only tail takes a quarter of a latency share: %v", sh)
	}
	if sh := alphaShares([]string{canary.MetricLatency}); sh[canary.MetricLatency] != 1 {
		t.Errorf("one metric takes the whole budget: %v", sh)
	}
}

// tpotFrom carries a synthetic series' latency histograms as TPOT only,
// so that the judge can see a regression through TPOT alone.
func tpotFrom(src seriesFn) seriesFn {
	return func(start, end time.Time, step time.Duration) *signals.Series {
		s := src(start, end, step)
		s.TPOTBounds, s.LatencyBounds = s.LatencyBounds, nil
		for i := range s.Intervals {
			s.Intervals[i].TPOT, s.Intervals[i].Latency = s.Intervals[i].Latency, [2][]float64{}
		}
		return s
	}
}

func TestJudgeTPOT(t *testing.T) {
	start := epoch.Add(10 * time.Minute)
	base := side{errRate: 0.001, median: 0.3, sigma: 0.5}
	slow := side{errRate: 0.001, median: 0.45, sigma: 0.5}
	r, after := runJudge(t, judgeGate("tpot"), tpotFrom(synth(7, 20, 0.3, base, slow, start)), start, 45*time.Minute)
	if r.Verdict != canary.VerdictFailed || !strings.Contains(r.Value, "tpot") {
		t.Fatalf("50%% slower per token: %s (%s) after %s, want Failed on tpot", r.Verdict, r.Reason, after)
	}
	r, _ = runJudge(t, judgeGate("tpot"), tpotFrom(synth(7, 20, 0.3, base, base, start)), start, 45*time.Minute)
	if r.Verdict != canary.VerdictSuccessful {
		t.Fatalf("identical per-token latency: %s (%s), want Successful", r.Verdict, r.Reason)
	}
	// A model server that exports no TPOT: the metric is skipped, and says so.
	r, _ = runJudge(t, judgeGate("latency", "tpot"), synth(7, 20, 0.3, base, base, start), start, 45*time.Minute)
	if r.Verdict != canary.VerdictSuccessful || !strings.Contains(r.Reason, "tpot: not reported by either side; skipped") {
		t.Fatalf("without TPOT: %s (%s), want Successful with tpot skipped", r.Verdict, r.Reason)
	}
}

// tailSeries is 100 stable and 25 canary requests every 10 s with fixed
// histograms over bounds: stable's p95 is the 1 s bucket; the canary's
// median matches stable's, and with tail it sends 3 of its 25 requests
// past 2 s.
func tailSeries(tail bool) seriesFn {
	stable := []float64{5, 15, 30, 25, 15, 5, 4, 1}
	canaryH := []float64{1.25, 3.75, 7.5, 6.25, 3.75, 1.25, 1, 0.25}
	if tail {
		canaryH = []float64{1, 3, 7, 6, 3, 1, 1, 3}
	}
	return func(start, end time.Time, step time.Duration) *signals.Series {
		s := &signals.Series{LatencyBounds: bounds}
		for t := epoch; t.Before(end); t = t.Add(step) {
			iv := signals.Interval{Start: t, End: t.Add(step), KVCache: signals.NaN2(), QueueDepth: signals.NaN2(),
				GPUMemoryUsed: signals.NaN2(), GPUTempC: signals.NaN2(), ECCUncorrected: signals.NaN2()}
			iv.Latency[signals.Stable] = stable
			iv.Requests[signals.Stable] = 100
			if !t.Before(epoch.Add(10 * time.Minute)) {
				iv.Latency[signals.Canary] = canaryH
				iv.Requests[signals.Canary] = 25
			}
			if !t.Before(start) {
				s.Intervals = append(s.Intervals, iv)
			}
		}
		return s
	}
}

// The latency tail test catches a slow tail the median test passes, and
// never holds back a canary whose tail is as stable's.
func TestJudgeLatencyTail(t *testing.T) {
	start := epoch.Add(10 * time.Minute)
	r, _ := runJudge(t, judgeGate(canary.MetricLatency), tailSeries(true), start, 20*time.Minute)
	if r.Verdict != canary.VerdictSuccessful {
		t.Fatalf("the median test alone: %s (%s), want it to pass the slow tail", r.Verdict, r.Reason)
	}
	r, _ = runJudge(t, judgeGate(canary.MetricLatency, canary.MetricLatencyTail), tailSeries(true), start, 20*time.Minute)
	if r.Verdict != canary.VerdictFailed || r.Value != canary.MetricLatencyTail {
		t.Fatalf("with the tail test: %s by %q (%s), want Failed by latencyTail", r.Verdict, r.Value, r.Reason)
	}
	r, _ = runJudge(t, judgeGate(canary.MetricLatency, canary.MetricLatencyTail), tailSeries(false), start, 20*time.Minute)
	if r.Verdict != canary.VerdictSuccessful || !strings.Contains(r.Reason, "no evidence of a worse tail") {
		t.Fatalf("same tail, confirm mode: %s (%s), want Successful with the tail not holding it back", r.Verdict, r.Reason)
	}
}
