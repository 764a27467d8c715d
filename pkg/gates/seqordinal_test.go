package gates

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/canarybot/canarybot/pkg/signals"
)

// histStream draws n intervals of latency histograms in vLLM's e2e
// buckets: each side serves Poisson(perInterval·share) requests an interval,
// lognormal with σ 0.5 and median medS on stable, medC(i) on the canary in
// interval i. It returns the histograms and the stable reference histogram
// (2,000 requests) the cuts are taken from.
func histStream(rnd *rand.Rand, n int, perInterval, canaryShare, medS float64, medC func(int) float64) (hists [][2][]float64, ref []float64) {
	bounds := signals.E2EBuckets()
	draw := func(count, med float64) []float64 {
		h := make([]float64, len(bounds)+1)
		for range int(count) {
			x := med * math.Exp(0.5*rnd.NormFloat64())
			k, _ := slices.BinarySearch(bounds, x)
			h[k]++
		}
		return h
	}
	ref = draw(2000, medS)
	for i := range n {
		hists = append(hists, [2][]float64{draw(poisson(rnd, perInterval*(1-canaryShare)), medS), draw(poisson(rnd, perInterval*canaryShare), medC(i))})
	}
	return hists, ref
}

// tables splits each interval at bucket k (the split) and at the
// continuation cuts.
func tables(hists [][2][]float64, k int, cuts []int) (split []Counts, levels [][]Counts) {
	for _, h := range hists {
		split = append(split, Counts{RequestsS: signals.Sum(h[0]), RequestsC: signals.Sum(h[1]), EventsS: above(h[0], k), EventsC: above(h[1], k)})
		levels = append(levels, continuationTables(h, cuts))
	}
	return split, levels
}

// medianStream is histStream cut at the Worse test's cuts: the median
// split and the continuation tables.
func medianStream(rnd *rand.Rand, n int, perInterval, canaryShare, medS, medC float64) (median []Counts, levels [][]Counts) {
	hists, ref := histStream(rnd, n, perInterval, canaryShare, medS, func(int) float64 { return medC })
	k, _ := medianBucket(ref)
	return tables(hists, k, levelCuts(ref, k))
}

// The cuts sit at stable's median and near its 20th and 80th percentiles
// where the buckets allow, and the tables nest: each table's at-risk
// requests are the previous table's exceedances.
func TestLevelCutsAndContinuationTables(t *testing.T) {
	bounds := signals.E2EBuckets()
	ref := make([]float64, len(bounds)+1)
	prev := 0.0
	for i, b := range bounds { // lognormal, median 0.3 s, σ 0.5, in expectation
		c := normalCDF(math.Log(b/0.3) / 0.5)
		ref[i], prev = 1e6*(c-prev), c
	}
	ref[len(bounds)] = 1e6 * (1 - prev)
	k, _ := medianBucket(ref)
	var got []float64
	for _, c := range levelCuts(ref, k) {
		got = append(got, bounds[c])
	}
	if want := []float64{0.2, 0.3, 0.5}; !slices.Equal(got, want) {
		t.Errorf("cuts at %v s, want %v", got, want)
	}
	if cuts := withCut(withCut([]int{7, 9, 10}, 12), 9); !slices.Equal(cuts, []int{7, 9, 10, 12}) {
		t.Errorf("withCut: %v, want [7 9 10 12]", cuts)
	}
	// Buckets too coarse for a side cut leave the median alone.
	if cuts := levelCuts([]float64{10, 10, 0}, 0); !slices.Equal(cuts, []int{0}) {
		t.Errorf("two buckets: cuts %v, want [0]", cuts)
	}
	h := [2][]float64{{1, 2, 3, 4}, {4, 3, 2, 1}}
	tables := continuationTables(h, []int{0, 2})
	want := []Counts{
		{RequestsS: 10, RequestsC: 10, EventsS: 9, EventsC: 6},
		{RequestsS: 9, RequestsC: 6, EventsS: 4, EventsC: 1},
	}
	if !slices.Equal(tables, want) {
		t.Errorf("tables %+v, want %+v", tables, want)
	}
}

// Peeked at after every interval, the ordinal Worse test keeps its false
// alarms under α on identical sides, and under it when the canary is
// faster (the composite null), at a rollout's weights.
func TestOrdinalWorseTestKeepsAlpha(t *testing.T) {
	const runs, alpha = 300, 0.05
	bound := alpha + 2.5*math.Sqrt(alpha*(1-alpha)/runs)
	for _, c := range []struct {
		name  string
		share float64
		medC  float64
	}{{"A/A at 5%", 0.05, 0.3}, {"A/A at 50%", 0.5, 0.3}, {"canary 10% faster at 20%", 0.2, 0.27}} {
		alarms := 0
		for seed := uint64(0); seed < runs; seed++ {
			rnd := rand.New(rand.NewPCG(seed, 29))
			median, levels := medianStream(rnd, 120, 20, c.share, 0.3, c.medC)
			if RunOrdinalExceedanceTests(levels, median, alpha, 0.05, 1.3, 0.5).WorseAt >= 0 {
				alarms++
			}
		}
		if rate := float64(alarms) / runs; rate > bound {
			t.Errorf("%s: false alarms %d/%d = %.3f, bound %.3f", c.name, alarms, runs, rate, bound)
		}
	}
}

// A canary 20% slower at every quantile: on the same streams, the ordinal
// Worse test reverts with at least 15% fewer canary requests at p80 than
// the median split alone, and the NotWorse test never passes it. At the
// crossing, the bounds reported (EstimateOrdinal) are above 1, and one
// interval before it they are not.
func TestOrdinalWorseTestIsFasterOnAShift(t *testing.T) {
	const alpha = 0.015
	var ord, med []float64
	for seed := uint64(0); seed < 100; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 31))
		median, levels := medianStream(rnd, 400, 20, 0.05, 0.3, 0.36)
		po := RunOrdinalExceedanceTests(levels, median, alpha, 0.01, 1.3, 0.5)
		pm := RunExceedanceTests(median, alpha, 0.01, 1.3, 0.5)
		if po.NotWorseAt >= 0 && (po.WorseAt < 0 || po.NotWorseAt < po.WorseAt) {
			t.Fatalf("seed %d: a 20%% slower canary passed the not-worse test", seed)
		}
		for _, r := range []struct {
			p  RatioPath
			to *[]float64
		}{{po, &ord}, {pm, &med}} {
			n := math.Inf(1)
			if r.p.WorseAt >= 0 {
				n = canaryRequestsAt(median, r.p.WorseAt)
			}
			*r.to = append(*r.to, n)
		}
		if po.WorseAt < 1 {
			continue
		}
		if est, lo, hi := EstimateOrdinal(levels[:po.WorseAt+1], alpha, 0.5); !(lo > 1) {
			t.Errorf("seed %d: the ordinal Worse test crossed but the bounds are %.3f [%.3f, %.3f]", seed, est, lo, hi)
		}
		if _, lo, _ := EstimateOrdinal(levels[:po.WorseAt], alpha, 0.5); lo > 1 {
			t.Errorf("seed %d: the lower bound %.3f is above 1 one interval before the crossing", seed, lo)
		}
	}
	slices.Sort(ord)
	slices.Sort(med)
	if o, m := ord[79], med[79]; !(o < 0.85*m) {
		t.Errorf("p80 canary requests: ordinal %.0f, median split %.0f; want the ordinal test at least 15%% faster", o, m)
	}
	t.Logf("p80 canary requests to revert: ordinal %.0f, median split %.0f", ord[79], med[79])
}

// The latency burst detector on the continuation tables at the Worse
// test's cuts and stable's p95: a 20 s spell twice as slow at a 5% weight
// (about 20 canary requests) is caught more often than by the p95 split
// alone, and on identical sides it keeps its false alarms under α.
func TestOrdinalBurstDetector(t *testing.T) {
	const runs, alpha = 300, 0.005
	caught, caughtTail, falseAlarms := 0, 0, 0
	for seed := uint64(0); seed < runs; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 37))
		spell := func(i int) float64 {
			if i == 30 || i == 31 {
				return 0.6
			}
			return 0.3
		}
		hists, ref := histStream(rnd, 60, 200, 0.05, 0.3, spell) // 20 requests a second
		k, _ := quantileBucket(ref, tailQuantile)
		m, _ := medianBucket(ref)
		tail, levels := tables(hists, k, withCut(levelCuts(ref, m), k))
		if RunOrdinalBurstDetector(levels, tail, alpha).AlarmAt >= 0 {
			caught++
		}
		if RunOrdinalBurstDetector(singleTables(tail), tail, alpha).AlarmAt >= 0 {
			caughtTail++
		}
		aa, aaRef := histStream(rnd, 60, 200, 0.2, 0.3, func(int) float64 { return 0.3 })
		ka, _ := quantileBucket(aaRef, tailQuantile)
		ma, _ := medianBucket(aaRef)
		aaTail, aaLevels := tables(aa, ka, withCut(levelCuts(aaRef, ma), ka))
		if RunOrdinalBurstDetector(aaLevels, aaTail, alpha).AlarmAt >= 0 {
			falseAlarms++
		}
	}
	if !(caught >= caughtTail+runs/10) {
		t.Errorf("slow spells caught: %d/%d with the tables, %d with the p95 split alone; want at least %d more", caught, runs, caughtTail, runs/10)
	}
	if bound := alpha + 2.5*math.Sqrt(alpha*(1-alpha)/runs); float64(falseAlarms)/runs > bound {
		t.Errorf("A/A: %d/%d false alarms, bound %.3f", falseAlarms, runs, bound)
	}
	t.Logf("slow spells caught: %d/%d with the tables, %d with the p95 split; A/A false alarms %d", caught, runs, caughtTail, falseAlarms)
}
