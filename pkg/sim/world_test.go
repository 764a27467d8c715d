package sim

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/signals"
)

func mustScenario(t testing.TB, yaml string) *Scenario {
	t.Helper()
	sc, err := ParseScenario([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// startedWorld runs warmup seconds of stable-only traffic, then sets the
// canary weight and runs canary seconds more. It returns the world and the
// canary's start.
func startedWorld(t testing.TB, sc *Scenario, seed uint64, warmup, canary, weight int) (*World, time.Time) {
	t.Helper()
	w, err := NewWorld(sc, seed, Epoch())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Advance(warmup); err != nil {
		t.Fatal(err)
	}
	w.SetWeight(weight)
	if err := w.Advance(canary); err != nil {
		t.Fatal(err)
	}
	cs, ok := w.CanaryStart()
	if weight > 0 && canary > 0 && !ok {
		t.Fatal("the canary never started")
	}
	return w, cs
}

func read(t testing.TB, w *World, start, end time.Time, step time.Duration) *signals.Series {
	t.Helper()
	s, err := w.Read(context.Background(), start, end, step)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// total sums a series' intervals in [from, to] (by interval bounds).
func total(s *signals.Series, from, to time.Time) (req, errs [2]float64, lat, ttft, pred [2][]float64) {
	for _, iv := range s.Intervals {
		if iv.NoData || iv.Start.Before(from) || iv.End.After(to) {
			continue
		}
		for side := range 2 {
			req[side] += iv.Requests[side]
			errs[side] += iv.Errors[side]
			lat[side] = addInto(lat[side], iv.Latency[side])
			ttft[side] = addInto(ttft[side], iv.TTFT[side])
			pred[side] = addInto(pred[side], iv.Predictions[side])
		}
	}
	return
}

func addInto(acc, xs []float64) []float64 {
	if acc == nil && xs != nil {
		acc = make([]float64, len(xs))
	}
	for i, x := range xs {
		acc[i] += x
	}
	return acc
}

// below is the share of a histogram's observations at or below bound.
func below(counts, bounds []float64, bound float64) float64 {
	n, k := 0.0, 0.0
	for i, c := range counts {
		n += c
		if i < len(bounds) && bounds[i] <= bound {
			k += c
		}
	}
	return k / n
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.4f, want %.4f ± %.4f", what, got, want, tol)
	}
}

func TestTrafficStatistics(t *testing.T) {
	sc := mustScenario(t, `
name: stats
traffic: {rps: 50, maxDuration: 3h}
stable:
  errorRate: 0.02
  latency: {distribution: lognormal, medianSeconds: 0.30, sigma: 0.5}
  ttft: {distribution: lognormal, medianSeconds: 0.08, sigma: 0.4}
  predictions: {classes: [0.7, 0.2, 0.1]}
canary:
  errorRate: 0.05
  latency: {distribution: lognormal, medianSeconds: 1.0, sigma: 0.5}
expect: promote
`)
	const secs = 2 * 3600
	w, cs := startedWorld(t, sc, 7, 0, secs, 30)
	s := read(t, w, cs, cs.Add(secs*time.Second), time.Minute)
	req, errs, lat, ttft, pred := total(s, cs, w.Now())
	n := req[0] + req[1]
	// Bounds are about five standard deviations of each estimate.
	near(t, "requests per second", n/secs, 50, 0.5)
	near(t, "canary share at weight 30", req[1]/n, 0.30, 0.005)
	near(t, "stable error ratio", errs[0]/req[0], 0.02, 0.0015)
	near(t, "canary error ratio", errs[1]/req[1], 0.05, 0.003)
	// 0.3 and 1.0 are bucket bounds: half of each side lies below its median.
	near(t, "stable share below its 0.3s median", below(lat[0], s.LatencyBounds, 0.3), 0.5, 0.01)
	near(t, "canary share below its 1.0s median", below(lat[1], s.LatencyBounds, 1.0), 0.5, 0.015)
	// P(X ≤ 0.5) for lognormal(0.3, 0.5) is Φ(ln(5/3)/0.5) ≈ 0.8465.
	near(t, "stable share below 0.5s", below(lat[0], s.LatencyBounds, 0.5), 0.8465, 0.01)
	near(t, "stable TTFT share below its 0.08s median", below(ttft[0], s.TTFTBounds, 0.08), 0.5, 0.01)
	if got := signals.Sum(ttft[0]) + errs[0]; got != req[0] {
		t.Errorf("TTFT counts %v successful stable requests plus errors, want %v", got, req[0])
	}
	if got := signals.Sum(lat[1]); got != req[1] {
		t.Errorf("the latency histogram counts %v canary requests, want all %v", got, req[1])
	}
	near(t, "class 0 share", pred[0][0]/signals.Sum(pred[0]), 0.7, 0.01)
	near(t, "class 2 share", pred[0][2]/signals.Sum(pred[0]), 0.1, 0.006)
	if got := w.CanaryRequests(); float64(got) != req[1] {
		t.Errorf("CanaryRequests() = %d, the series counts %v", got, req[1])
	}
}

func TestLowRateAndHighRatePoisson(t *testing.T) {
	for _, rps := range []float64{0.5, 400} {
		sc := mustScenario(t, fmt.Sprintf("name: p\ntraffic: {rps: %v, maxDuration: 1h}\nstable: {}\nexpect: promote\n", rps))
		w, _ := startedWorld(t, sc, 3, 3600, 0, 0)
		s := read(t, w, Epoch(), w.Now(), time.Hour)
		mean := s.Intervals[0].Requests[0] / 3600
		near(t, fmt.Sprintf("mean rate at rps %v", rps), mean, rps, 5*math.Sqrt(rps/3600))
	}
}

func TestWorldDeterministic(t *testing.T) {
	sc := mustScenario(t, `
name: det
traffic: {rps: 20, maxDuration: 30m}
stable: {errorRate: 0.01, latency: {medianSeconds: 0.3, sigma: 0.5}, kvCacheUsage: 0.4}
canary: {kvCacheGrowthPerMinute: 0.01}
expect: promote
`)
	series := func(seed uint64) string {
		w, _ := startedWorld(t, sc, seed, 600, 600, 25)
		return fmt.Sprint(*read(t, w, Epoch(), w.Now(), 10*time.Second))
	}
	a, b, c := series(11), series(11), series(12)
	if a != b {
		t.Error("the same seed gave different series")
	}
	if a == c {
		t.Error("different seeds gave the same series")
	}
}

func TestWarmupSpikeChange(t *testing.T) {
	sc := mustScenario(t, `
name: warmup-spike
traffic: {rps: 20, maxDuration: 45m}
stable:
  latency: {distribution: lognormal, medianSeconds: 0.30, sigma: 0.5}
canary: {}
changes:
  - at: 0s
    for: 90s
    target: canary
    set: {latency: {distribution: lognormal, medianSeconds: 0.90, sigma: 0.5}}
expect: promote
`)
	w, _ := startedWorld(t, sc, 5, 600, 0, 50)
	medianAt := func(sec int) float64 {
		t.Helper()
		if err := w.Advance(sec - int(w.Now().Sub(Epoch())/time.Second)); err != nil {
			t.Fatal(err)
		}
		return w.sides[signals.Canary].p.latency.median[0]
	}
	// Second k covers (k, k+1]; the canary's first second is 600.
	if m := medianAt(600 + 90); m != 0.9 {
		t.Errorf("canary median in its 90th second = %v, want 0.9", m)
	}
	if m := medianAt(600 + 91); m != 0.3 {
		t.Errorf("canary median after 90 s = %v, want 0.3", m)
	}
	medianAt(600 + 20*60)
	cs, _ := w.CanaryStart()
	s := read(t, w, cs, cs.Add(20*time.Minute), 90*time.Second)
	_, _, spike, _, _ := total(s, cs, cs.Add(90*time.Second))
	_, _, after, _, _ := total(s, cs.Add(90*time.Second), w.Now())
	// Below 0.5 s: Φ(ln(0.5/0.9)/0.5) ≈ 0.12 while slow, ≈ 0.85 after.
	if f := below(spike[1], s.LatencyBounds, 0.5); f > 0.25 {
		t.Errorf("during the spike %.2f of canary requests took ≤ 0.5 s, want about 0.12", f)
	}
	fa, fs := below(after[1], s.LatencyBounds, 0.5), below(after[0], s.LatencyBounds, 0.5)
	near(t, "canary share ≤ 0.5 s after the spike", fa, 0.8465, 0.03)
	near(t, "canary vs stable share ≤ 0.5 s after the spike", fa, fs, 0.04)
}

func TestMetricsOutageNoData(t *testing.T) {
	sc := mustScenario(t, `
name: metrics-outage
traffic: {rps: 20, maxDuration: 60m}
stable: {errorRate: 0.001, latency: {distribution: lognormal, medianSeconds: 0.30, sigma: 0.5}}
canary: {}
changes:
  - {at: 7m, for: 4m, target: metrics, set: {available: false}}
expect: promote
`)
	w, cs := startedWorld(t, sc, 1, 600, 20*60, 10)
	from, to := cs.Add(7*time.Minute), cs.Add(11*time.Minute)
	for _, step := range []time.Duration{time.Second, 10 * time.Second} {
		s := read(t, w, cs.Add(-10*time.Minute), w.Now(), step)
		noData := 0
		for _, iv := range s.Intervals {
			inside := !iv.Start.Before(from) && !iv.End.After(to)
			if iv.NoData != inside {
				t.Fatalf("step %s: interval (%s, %s] NoData=%v", step, iv.Start.Sub(cs), iv.End.Sub(cs), iv.NoData)
			}
			if iv.NoData {
				noData++
				if !math.IsNaN(iv.Requests[1]) || iv.Latency[0] != nil || !math.IsNaN(iv.KVCache[0]) {
					t.Errorf("a NoData interval carries values: %+v", iv)
				}
			} else if iv.Latency[0] == nil || math.IsNaN(iv.Requests[0]) {
				t.Errorf("interval (%s, %s] lacks stable data", iv.Start.Sub(cs), iv.End.Sub(cs))
			}
		}
		if want := int(4 * time.Minute / step); noData != want {
			t.Errorf("step %s: %d NoData intervals, want %d", step, noData, want)
		}
	}
}

func TestGaugesXidAndCanaryBeforeTraffic(t *testing.T) {
	sc := mustScenario(t, `
name: gauges
traffic: {rps: 10, maxDuration: 45m}
stable:
  latency: {medianSeconds: 1.0, sigma: 0.4}
  kvCacheUsage: 0.35
  queueDepth: 2
  gpu: {memoryUsedFraction: 0.55, temperatureC: 65}
canary:
  kvCacheUsage: 0.55
  kvCacheGrowthPerMinute: 0.06
changes:
  - {at: 6m, target: canary, set: {gpu: {memoryUsedFraction: 0.55, temperatureC: 65, xid: [79]}}}
expect: revert
`)
	w, cs := startedWorld(t, sc, 2, 600, 10*60, 20)
	s := read(t, w, cs.Add(-2*time.Minute), w.Now(), time.Minute)
	before := s.Intervals[0]
	if before.Requests[1] != 0 || before.Latency[1] != nil || !math.IsNaN(before.KVCache[1]) || before.Latency[0] == nil {
		t.Errorf("before its first traffic the canary reports: %+v", before)
	}
	var xids []string
	for _, iv := range s.Intervals {
		m := int(iv.End.Sub(cs) / time.Minute)
		if m <= 0 {
			continue
		}
		near(t, fmt.Sprintf("canary KV cache %d min in", m), iv.KVCache[1], min(0.55+0.06*float64(m), 1), 1e-9)
		near(t, "stable KV cache", iv.KVCache[0], 0.35, 0)
		near(t, "canary queue depth", iv.QueueDepth[1], 2, 0)
		for side, codes := range iv.Xid {
			for _, c := range codes {
				xids = append(xids, fmt.Sprintf("%s:%d@%dm", signals.Side(side), c, m))
			}
		}
	}
	if got := fmt.Sprint(xids); got != "[canary:79@7m]" {
		t.Errorf("Xids %s, want 79 once on the canary in its 7th minute", got)
	}
}

func TestReadBounds(t *testing.T) {
	sc := mustScenario(t, "name: r\ntraffic: {rps: 5, maxDuration: 5m}\nstable: {}\nexpect: promote\n")
	w, _ := startedWorld(t, sc, 1, 100, 0, 0)
	s := read(t, w, Epoch().Add(-20*time.Second), Epoch().Add(time.Hour), 10*time.Second)
	if n := len(s.Intervals); n != 12 {
		t.Errorf("read past now: %d intervals, want 12 (up to now only)", n)
	}
	if !s.Intervals[0].NoData || !s.Intervals[1].NoData || s.Intervals[2].NoData {
		t.Error("intervals before the epoch must be NoData, the others not")
	}
	if _, err := w.Read(context.Background(), Epoch(), w.Now(), 500*time.Millisecond); err == nil {
		t.Error("a step below 1s must fail")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Read(ctx, Epoch(), w.Now(), time.Second); err == nil {
		t.Error("a cancelled read must fail")
	}
}

// BenchmarkWorldAdvance measures one simulated hour at 100 rps, half of it
// on the canary.
func BenchmarkWorldAdvance(b *testing.B) {
	sc := mustScenario(b, `
name: bench
traffic: {rps: 100, maxDuration: 1h}
stable:
  errorRate: 0.001
  latency: {distribution: lognormal, medianSeconds: 0.30, sigma: 0.5}
  ttft: {distribution: lognormal, medianSeconds: 0.05, sigma: 0.4}
  kvCacheUsage: 0.4
  predictions: {classes: [0.7, 0.2, 0.1]}
canary: {}
expect: promote
`)
	for b.Loop() {
		w, err := NewWorld(sc, 1, Epoch())
		if err != nil {
			b.Fatal(err)
		}
		w.SetWeight(50)
		if err := w.Advance(3600); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCommonRandomNumbersAcrossPolicies(t *testing.T) {
	sc := mustScenario(t, `
name: crn
traffic: {rps: 20, maxDuration: 30m}
stable:
  errorRate: 0.01
  latency: {distribution: lognormal, medianSeconds: 0.30, sigma: 0.5}
  ttft: {distribution: lognormal, medianSeconds: 0.05, sigma: 0.4}
  predictions: {classes: [0.7, 0.2, 0.1]}
canary: {}
expect: promote
`)
	// Two policies on one seed: 10% throughout, or 60% then 100%.
	a, _ := startedWorld(t, sc, 21, 600, 900, 10)
	b, _ := startedWorld(t, sc, 21, 600, 300, 60)
	b.SetWeight(100)
	if err := b.Advance(600); err != nil {
		t.Fatal(err)
	}
	sa, sb := read(t, a, Epoch(), a.Now(), 10*time.Second), read(t, b, Epoch(), b.Now(), 10*time.Second)
	both := func(iv signals.Interval) string {
		return fmt.Sprint(iv.Requests[0]+iv.Requests[1], iv.Errors[0]+iv.Errors[1],
			addInto(addInto(nil, iv.Latency[0]), iv.Latency[1]), addInto(addInto(nil, iv.TTFT[0]), iv.TTFT[1]),
			addInto(addInto(nil, iv.Predictions[0]), iv.Predictions[1]))
	}
	for i := range sa.Intervals {
		ia, ib := sa.Intervals[i], sb.Intervals[i]
		if both(ia) != both(ib) {
			t.Fatalf("interval %d: the same behaviour on both sides must give the same traffic whatever the split:\n%s\n%s", i, both(ia), both(ib))
		}
		if ia.Requests[1] > ib.Requests[1] {
			t.Fatalf("interval %d: the canary's requests at 10%% (%v) must be among those at 60-100%% (%v)", i, ia.Requests[1], ib.Requests[1])
		}
	}
}
