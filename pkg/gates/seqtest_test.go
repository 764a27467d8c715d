package gates

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// poissonStream draws n intervals: each side serves Poisson(rps·share)
// requests, each an event with probability pS or pC.
func poissonStream(rnd *rand.Rand, n int, rps, canaryShare, pS, pC float64) []Counts {
	out := make([]Counts, n)
	for i := range out {
		nc := poisson(rnd, rps*canaryShare)
		ns := poisson(rnd, rps*(1-canaryShare))
		out[i] = Counts{RequestsS: ns, RequestsC: nc, EventsS: binomial(rnd, ns, pS), EventsC: binomial(rnd, nc, pC)}
	}
	return out
}

func poisson(rnd *rand.Rand, mean float64) float64 {
	if mean > 50 {
		return math.Max(0, math.Round(mean+math.Sqrt(mean)*rnd.NormFloat64()))
	}
	l, k, p := math.Exp(-mean), 0.0, 1.0
	for {
		p *= rnd.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func binomial(rnd *rand.Rand, n, p float64) float64 {
	k := 0.0
	for i := 0.0; i < n; i++ {
		if rnd.Float64() < p {
			k++
		}
	}
	return k
}

// Peeking after every interval keeps the false-alarm rate at alpha.
func TestWorseTestKeepsAlphaUnderContinuousPeeking(t *testing.T) {
	const runs, alpha = 400, 0.05
	alarms := 0
	for seed := uint64(0); seed < runs; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 7))
		p := RunRatioTests(poissonStream(rnd, 300, 20, 0.2, 0.05, 0.05), alpha, 0.05, 1.5)
		if p.WorseAt >= 0 {
			alarms++
		}
	}
	// Ville's bound is alpha; allow sampling noise of about 2.5 sd.
	if rate := float64(alarms) / runs; rate > alpha+2.5*math.Sqrt(alpha*(1-alpha)/runs) {
		t.Errorf("false alarms %d/%d = %.3f, bound %.2f", alarms, runs, rate, alpha)
	}
}

// Errors 0.1% → 1%: the target is a decision within 1,500 canary
// requests at p80.
func TestWorseTestDetectsTenfoldErrors(t *testing.T) {
	var at []float64
	for seed := uint64(0); seed < 100; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 9))
		stream := poissonStream(rnd, 2000, 20, 0.1, 0.001, 0.01)
		p := RunRatioTests(stream, 0.025, 0.01, 2)
		if p.NotWorseAt >= 0 && (p.WorseAt < 0 || p.NotWorseAt < p.WorseAt) {
			t.Errorf("seed %d: a tenfold error rate passed the not-worse test at interval %d", seed, p.NotWorseAt)
		}
		if p.WorseAt < 0 {
			at = append(at, math.Inf(1))
			continue
		}
		n := 0.0
		for _, c := range stream[:p.WorseAt+1] {
			n += c.RequestsC
		}
		at = append(at, n)
	}
	slices.Sort(at)
	if p80 := at[79]; p80 > 1500 {
		t.Errorf("p80 canary requests before detection = %.0f, want ≤ 1500", p80)
	}
	if at[98] == math.Inf(1) {
		t.Errorf("more than 1%% of tenfold regressions undetected after 4000 canary requests")
	}
}

func TestNotWorseTestPassesIdenticalBuilds(t *testing.T) {
	passed := 0
	for seed := uint64(0); seed < 100; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 11))
		p := RunRatioTests(poissonStream(rnd, 600, 20, 0.3, 0.5, 0.5), 0.05, 0.01, 1.2)
		if p.NotWorseAt >= 0 && p.WorseAt < 0 {
			passed++
		}
	}
	if passed < 95 {
		t.Errorf("identical builds passed %d/100", passed)
	}
}

func TestEstimateCoversTheTrueRatio(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 3))
	stream := poissonStream(rnd, 600, 20, 0.3, 0.1, 0.15)
	p := RunRatioTests(stream, 0.05, 0.01, 1.2)
	est, lo, hi := Estimate(stream, 0.05)
	if !(lo <= 1.5 && 1.5 <= hi) || math.Abs(est-1.5) > 0.2 {
		t.Errorf("estimate %.3f [%.3f, %.3f], true 1.5", est, lo, hi)
	}
	if p.WorseAt < 0 {
		t.Errorf("a 50%% regression over 3600 canary requests went undetected (e=%.2f)", p.WorseE)
	}
}

func TestRatioTestsWithoutInformation(t *testing.T) {
	p := RunRatioTests([]Counts{{}, {RequestsS: 10}, {RequestsC: 5, RequestsS: 5}}, 0.05, 0.05, 1.5)
	if p.WorseAt != -1 || p.NotWorseAt != -1 || p.WorseE != 1 || p.NotWorseE != 1 {
		t.Errorf("no events must mean no evidence: %+v", p)
	}
}

func TestRateBound(t *testing.T) {
	below, falsePass := 0, 0
	for seed := uint64(0); seed < 200; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 21))
		if at, _ := RunRateBound(poissonStream(rnd, 600, 20, 0.5, 0.001, 0.001), 0.005, 0.01); at >= 0 {
			below++ // 6000 canary requests at 0.1%: shown below 0.5%
		}
		if at, _ := RunRateBound(poissonStream(rnd, 600, 20, 0.5, 0.001, 0.006), 0.005, 0.01); at >= 0 {
			falsePass++ // a 0.6% canary must not be shown below 0.5%
		}
	}
	if below < 195 || falsePass > 4 {
		t.Errorf("0.1%% shown below 0.5%%: %d/200; 0.6%% shown below: %d/200 (bound 1%%)", below, falsePass)
	}
}
