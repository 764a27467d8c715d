package gates

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// canaryRequestsAt counts the canary requests up to interval i.
func canaryRequestsAt(stream []Counts, i int) float64 {
	n := 0.0
	for _, c := range stream[:i+1] {
		n += c.RequestsC
	}
	return n
}

// Exceedances of stable's median on both sides at p = 0.5, peeked at after
// every interval, at the weights a rollout uses: the exact test keeps its
// false-alarm rate under α, and so does the burst detector on the same
// likelihood.
func TestExceedanceTestsKeepAlphaUnderContinuousPeeking(t *testing.T) {
	const runs, alpha = 400, 0.05
	for _, share := range []float64{0.05, 0.5} {
		worse, bursts := 0, 0
		for seed := uint64(0); seed < runs; seed++ {
			rnd := rand.New(rand.NewPCG(seed, 11))
			stream := poissonStream(rnd, 200, 20, share, 0.5, 0.5)
			if RunExceedanceTests(stream, alpha, 0.05, 1.3, 0.5).WorseAt >= 0 {
				worse++
			}
			if RunOrdinalBurstDetector(singleTables(stream), stream, alpha).AlarmAt >= 0 {
				bursts++
			}
		}
		bound := alpha + 2.5*math.Sqrt(alpha*(1-alpha)/runs)
		for name, n := range map[string]int{"worse test": worse, "burst detector": bursts} {
			if rate := float64(n) / runs; rate > bound {
				t.Errorf("canary share %.2f: %s false alarms %d/%d = %.3f, bound %.2f", share, name, n, runs, rate, alpha)
			}
		}
	}
}

// A canary 20% slower at every quantile (lognormal, σ 0.5) exceeds stable's
// median 64% of the time. On the same streams the exact test decides with
// fewer canary requests than the binomial share, and never passes it.
func TestExceedanceTestIsFasterOnAShift(t *testing.T) {
	pC := 1 - normalCDF(-math.Log(1.2)/0.5)
	var exact, share []float64
	for seed := uint64(0); seed < 100; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 13))
		stream := poissonStream(rnd, 600, 20, 0.05, 0.5, pC)
		for _, r := range []struct {
			p  RatioPath
			to *[]float64
		}{{RunExceedanceTests(stream, 0.015, 0.01, 1.3, 0.5), &exact}, {RunRatioTests(stream, 0.015, 0.01, 1.3), &share}} {
			if r.p.NotWorseAt >= 0 && (r.p.WorseAt < 0 || r.p.NotWorseAt < r.p.WorseAt) {
				t.Fatalf("seed %d: a 20%% slower canary passed the not-worse test", seed)
			}
			n := math.Inf(1)
			if r.p.WorseAt >= 0 {
				n = canaryRequestsAt(stream, r.p.WorseAt)
			}
			*r.to = append(*r.to, n)
		}
	}
	slices.Sort(exact)
	slices.Sort(share)
	if e, s := exact[79], share[79]; !(e < 0.75*s) {
		t.Errorf("p80 canary requests: exact %.0f, binomial share %.0f; want the exact test at least a quarter faster", e, s)
	}
}

// An A/A stream passes the not-worse test against the margin, and the
// margin is read at stable's exceedance share: at p = 0.05 (the tail) a
// rate ratio of 1.3 is a smaller odds ratio than at p = 0.5.
func TestExceedanceMarginAtStablesShare(t *testing.T) {
	if a, b := marginOdds(1.3, 0.05), marginOdds(1.3, 0.5); !(a > 1.3 && a < b) {
		t.Errorf("margin odds at 5%% %.3f, at 50%% %.3f; want 1.3 < first < second", a, b)
	}
	if got := marginOdds(3, 0.5); got != OddsForRatio(1.98, 0.5) {
		t.Errorf("a ratio past 1/p: margin odds %.3f, want capped at %.3f", got, OddsForRatio(1.98, 0.5))
	}
	rnd := rand.New(rand.NewPCG(1, 17))
	if p := RunExceedanceTests(poissonStream(rnd, 600, 20, 0.5, 0.5, 0.5), 0.05, 0.05, 1.3, 0.5); p.NotWorseAt < 0 || p.WorseAt >= 0 {
		t.Errorf("A/A: not-worse at %d, worse at %d; want a pass and no alarm", p.NotWorseAt, p.WorseAt)
	}
}

func normalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// The bounds reported with a verdict come from the law that decided it,
// and tell the same story: on each stream, at the Worse test's crossing
// the lower bound is above 1, and one interval before it is not, for the
// exceedances' exact law and the errors' binomial share alike. The bounds
// cover the true ratio at the crossing, and the exact law's are narrower.
func TestEstimateBoundsAgreeWithTheWorseTest(t *testing.T) {
	const alpha = 0.018
	pC := 1 - normalCDF(-math.Log(1.2)/0.5) // a canary 20% slower, p = 0.5
	type law struct {
		name  string
		truth float64
		pS    float64
		pC    float64
		test  func([]Counts) RatioPath
		bound func([]Counts) (float64, float64, float64)
	}
	laws := []law{
		{"exceedances", pC / 0.5, 0.5, pC,
			func(c []Counts) RatioPath { return RunExceedanceTests(c, alpha, 0.01, 1.3, 0.5) },
			func(c []Counts) (float64, float64, float64) { return EstimateExceedances(c, alpha, 0.5) }},
		{"errors", 3, 0.01, 0.03,
			func(c []Counts) RatioPath { return RunRatioTests(c, alpha, 0.01, 1.5) },
			func(c []Counts) (float64, float64, float64) { return Estimate(c, alpha) }},
	}
	for _, l := range laws {
		crossed, covered, width := 0, 0, 0.0
		for seed := uint64(0); seed < 100; seed++ {
			rnd := rand.New(rand.NewPCG(seed, 23))
			stream := poissonStream(rnd, 600, 20, 0.3, l.pS, l.pC)
			p := l.test(stream)
			if p.WorseAt < 1 {
				continue
			}
			crossed++
			est, lo, hi := l.bound(stream[:p.WorseAt+1])
			if !(lo > 1) {
				t.Errorf("%s seed %d: the Worse test crossed (e %.3g) but the bounds are %.3f [%.3f, %.3f]", l.name, seed, l.test(stream[:p.WorseAt+1]).WorseE, est, lo, hi)
			}
			if lo <= l.truth && l.truth <= hi {
				covered++
			}
			width += math.Log(hi / lo)
			if _, lo, _ := l.bound(stream[:p.WorseAt]); lo > 1 {
				t.Errorf("%s seed %d: the lower bound %.3f is above 1 one interval before the Worse test crossed", l.name, seed, lo)
			}
		}
		if crossed < 90 || covered < crossed*95/100 {
			t.Errorf("%s: crossed on %d/100 streams, bounds covered the true ratio %.2f on %d", l.name, crossed, l.truth, covered)
		}
		t.Logf("%s: mean width of the bounds at the crossing, in log ratio: %.3f", l.name, width/float64(crossed))
	}
	rnd := rand.New(rand.NewPCG(5, 23))
	stream := poissonStream(rnd, 200, 20, 0.3, 0.5, pC)
	_, lo, hi := EstimateExceedances(stream, alpha, 0.5)
	_, blo, bhi := Estimate(stream, alpha)
	if !(math.Log(hi/lo) < 0.75*math.Log(bhi/blo)) {
		t.Errorf("exceedances: exact bounds [%.3f, %.3f], binomial share [%.3f, %.3f]; want the exact ones at least a quarter narrower", lo, hi, blo, bhi)
	}
}

// singleTables makes each interval's split its only continuation table.
func singleTables(stream []Counts) [][]Counts {
	out := make([][]Counts, len(stream))
	for i, c := range stream {
		out[i] = []Counts{c}
	}
	return out
}

// logNorm sums outward from the largest term with the weights' ratios; it
// agrees with a direct log-sum-exp over the whole support, for small and
// large intervals, and odds ratios from 1/50 to 60.
func TestLogNormMatchesTheDirectSum(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 41))
	for range 2000 {
		nS, nC := 1+rnd.IntN(800), 1+rnd.IntN(400)
		c := PairCounts{TotalS: float64(nS), TotalC: float64(nC), SuccessS: float64(rnd.IntN(nS + 1)), SuccessC: float64(rnd.IntN(nC + 1))}
		o := c.prepare()
		if !o.usable {
			continue
		}
		for _, psi := range []float64{1.0 / 50, 0.4, 1, 1.05, 2.5, 20, 60} {
			lp := math.Log(psi)
			m := math.Inf(-1)
			for j, w := range o.logW {
				m = math.Max(m, w+float64(o.lo+j)*lp)
			}
			s := 0.0
			for j, w := range o.logW {
				s += math.Exp(w + float64(o.lo+j)*lp - m)
			}
			if want, got := m+math.Log(s), o.logNorm(lp); math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
				t.Fatalf("%+v at ψ %g: logNorm %.15g, direct sum %.15g", c, psi, got, want)
			}
		}
	}
}
