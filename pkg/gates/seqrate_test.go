package gates

import (
	"math"
	"math/rand/v2"
	"testing"
)

// pairRun draws intervals with the canary's weight rising 10% → 50% and
// runs the guardrail tests with margins promote 1%, rollback 3%.
func pairRun(rng *rand.Rand, pS, pC, alpha, beta float64, n int) PairPath {
	psiFail, psiPass := OddsForRatio(0.97, pS), OddsForRatio(0.99, pS)
	ivs := make([]PairCounts, n)
	for i := range ivs {
		total := 200.0
		w := 0.1 + 0.4*float64(i)/float64(n)
		nC := math.Round(total * w)
		nS := total - nC
		ivs[i] = PairCounts{TotalS: nS, TotalC: nC, SuccessS: binom(rng, nS, pS), SuccessC: binom(rng, nC, pC)}
	}
	return RunPairTests(ivs, alpha, beta, psiFail, psiPass)
}

func binom(rng *rand.Rand, n, p float64) float64 {
	k := 0.0
	for range int(n) {
		if rng.Float64() < p {
			k++
		}
	}
	return k
}

// TestPairTestsNullCalibration: a canary exactly at the rollback margin
// fails at most α of the time, and one exactly at the promote margin passes
// at most β of the time, however long the tests watch (Ville). Fixed seeds;
// the bounds allow for the Monte Carlo error of 200 runs.
func TestPairTestsNullCalibration(t *testing.T) {
	const runs, alpha, beta = 200, 0.05, 0.05
	for _, pS := range []float64{0.05, 0.9} {
		rng := rand.New(rand.NewPCG(7, uint64(pS*1000)))
		failed, passed := 0, 0
		for range runs {
			if p := pairRun(rng, pS, 0.97*pS, alpha, beta, 200); p.WorseAt >= 0 {
				failed++
			}
			if p := pairRun(rng, pS, 0.99*pS, alpha, beta, 200); p.NotWorseAt >= 0 {
				passed++
			}
		}
		if f := float64(failed) / runs; f > alpha+0.05 {
			t.Errorf("p=%g: a canary at the rollback margin failed in %.1f%% of runs; want ≤ %.0f%%", pS, 100*f, 100*alpha)
		}
		if f := float64(passed) / runs; f > beta+0.05 {
			t.Errorf("p=%g: a canary at the promote margin passed in %.1f%% of runs; want ≤ %.0f%%", pS, 100*f, 100*beta)
		}
	}
}

// TestPairTestsPower: a clearly worse canary fails, an identical one never
// fails, and with a rare success rate a 20%-worse canary is still caught.
func TestPairTestsPower(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		pS, pC     float64
		wantFailed bool
	}{
		{0.9, 0.8, true},
		{0.3, 0.24, true},
		{0.9, 0.9, false},
	} {
		failed := 0
		for range 40 {
			if p := pairRun(rng, tc.pS, tc.pC, 0.05, 0.01, 300); p.WorseAt >= 0 {
				failed++
			}
		}
		switch {
		case tc.wantFailed && failed < 38:
			t.Errorf("p_s %g, p_c %g: failed in %d of 40 runs; want ≥ 38", tc.pS, tc.pC, failed)
		case !tc.wantFailed && failed > 4:
			t.Errorf("p_s %g, p_c %g (no worse): failed in %d of 40 runs", tc.pS, tc.pC, failed)
		}
	}
}

// TestPairTestsIdenticalPasses: an identical canary at a 90% success rate
// passes with margins 5%/10% after enough intervals.
func TestPairTestsIdenticalPasses(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	psiFail, psiPass := OddsForRatio(0.9, 0.9), OddsForRatio(0.95, 0.9)
	passed := 0
	for range 20 {
		var ivs []PairCounts
		for range 200 {
			ivs = append(ivs, PairCounts{TotalS: 100, TotalC: 100, SuccessS: binom(rng, 100, 0.9), SuccessC: binom(rng, 100, 0.9)})
		}
		p := RunPairTests(ivs, 0.05, 0.01, psiFail, psiPass)
		if p.NotWorseAt >= 0 && p.WorseAt < 0 {
			passed++
		}
		if r := p.Ratio(); math.Abs(r-1) > 0.02 {
			t.Errorf("pooled ratio %g of identical sides is off 1", r)
		}
	}
	if passed < 19 {
		t.Errorf("an identical canary passed in %d of 20 runs; want ≥ 19", passed)
	}
}

// TestPairCountsDegenerate: intervals without information leave the tests
// where they were.
func TestPairCountsDegenerate(t *testing.T) {
	for _, c := range []PairCounts{
		{TotalS: 10, TotalC: 0, SuccessS: 5},
		{TotalS: 10, TotalC: 10},
		{TotalS: 10, TotalC: 10, SuccessS: 10, SuccessC: 10},
		{TotalS: math.NaN(), TotalC: 10, SuccessC: 3},
	} {
		p := RunPairTests([]PairCounts{c}, 0.05, 0.01, 0.9, 0.97)
		if p.WorseE != 1 || p.NotWorseE != 1 {
			t.Errorf("%+v: e-values %g, %g; want 1, 1", c, p.WorseE, p.NotWorseE)
		}
	}
	if got := OddsForRatio(1, 0.3); math.Abs(got-1) > 1e-12 {
		t.Errorf("OddsForRatio(1, p) = %g; want 1", got)
	}
}
