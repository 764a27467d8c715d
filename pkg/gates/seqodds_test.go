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
			if RunExceedanceBurstDetector(stream, alpha).AlarmAt >= 0 {
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
