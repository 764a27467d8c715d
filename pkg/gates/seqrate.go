package gates

import (
	"math"
	"sort"
)

// This file is the statistics of the judge's guardrails: a pair of
// counters where higher is better (conversions over requests, accepted
// suggestions over shown, labelled-correct over labelled), tested with
// anytime-valid mixture likelihood ratios like the rest of the judge.
//
// Model. In interval i stable has n_s trials and k_s successes, the canary
// n_c and k_c; each trial succeeds with probability p_s on stable and p_c
// on the canary, independently. Conditional on the trials and on the total
// successes k = k_s + k_c, the canary's successes follow Fisher's
// noncentral hypergeometric distribution
//
//	P(k_c = x) ∝ C(n_c, x)·C(n_s, k−x)·ψ^x,  ψ = [p_c/(1−p_c)] / [p_s/(1−p_s)]
//
// whose only parameter is the odds ratio ψ: stable's own level cancels, as
// in the judge's rate-ratio test, and the split may change every interval.
// Unlike the binomial of the rate-ratio test this is exact for any p, not
// only for rare events: at a 90% success rate successes are far from
// Poisson.
//
// Margins are relative degradations of the success rate, q = p_c/p_s:
// rollbackMargin 0.03 means "roll back when the canary's rate is more than
// 3% below stable's". At stable's rate p they are the odds ratios
//
//	ψ(q) = q·(1−p) / (1−q·p)
//
// where p is stable's rate before the test window (the same look-back the
// latency thresholds use), so the margins never depend on the data under
// test. Two one-sided tests run on the same intervals:
//   - Worse: H0 ψ ≥ ψ(1−rollbackMargin) against lower odds ratios, mixing
//     over a grid below the margin. Crossing 1/α is evidence the canary is
//     more than rollbackMargin worse: Failed.
//   - NotWorse: H0 ψ ≤ ψ(1−promoteMargin) against higher ones, mixing over
//     a grid above it that includes ψ = 1. Crossing 1/β is evidence the
//     canary is at most promoteMargin worse: passed.
//
// A canary between the margins (2% worse with 1% and 3%) is meant to do
// neither: the rollout holds rather than promote or revert it.

// PairCounts are one interval's trials and successes on each side.
type PairCounts struct {
	TotalS, TotalC     float64
	SuccessS, SuccessC float64
}

// oddsInterval is one interval, rounded to whole counts, with the log of
// its hypergeometric weights W(x) = C(n_c, x)·C(n_s, k−x) over the
// support, and the ratios W(x+1)/W(x), which decrease in x.
type oddsInterval struct {
	x, lo  int
	logW   []float64
	ratio  []float64
	norm1  float64 // logNorm(0), the null ψ = 1 every test compares with
	usable bool
}

// prepare rounds the counts and tabulates the weights. An interval with no
// successes, no failures or an empty side carries no information.
func (c PairCounts) prepare() oddsInterval {
	nS, nC := roundCount(c.TotalS), roundCount(c.TotalC)
	kS, kC := min(roundCount(c.SuccessS), nS), min(roundCount(c.SuccessC), nC)
	k := kS + kC
	if nS == 0 || nC == 0 || k == 0 || k == nS+nC {
		return oddsInterval{}
	}
	lo, hi := max(0, k-nS), min(k, nC)
	w := make([]float64, hi-lo+1)
	r := make([]float64, hi-lo)
	for x := lo; x <= hi; x++ {
		w[x-lo] = logChoose(nC, x) + logChoose(nS, k-x)
		if x < hi {
			r[x-lo] = float64(nC-x) / float64(x+1) * float64(k-x) / float64(nS-k+x+1)
		}
	}
	o := oddsInterval{x: kC, lo: lo, logW: w, ratio: r, usable: true}
	o.norm1 = o.logNorm(0)
	return o
}

// logNorm is log Σ_x W(x)·ψ^x. The terms rise while W(x+1)/W(x)·ψ ≥ 1
// and fall after, so the sum runs outward from the largest, term by term
// with the ratios, and stops where the terms no longer change it.
func (o oddsInterval) logNorm(logPsi float64) float64 {
	psi := math.Exp(logPsi)
	n := len(o.logW)
	peak := sort.Search(n-1, func(j int) bool { return o.ratio[j]*psi < 1 })
	const negligible = 1e-18
	sum, t := 1.0, 1.0
	for j := peak; j < n-1 && t > negligible; j++ {
		t *= o.ratio[j] * psi
		sum += t
	}
	t = 1
	for j := peak - 1; j >= 0 && t > negligible; j-- {
		t /= o.ratio[j] * psi
		sum += t
	}
	return o.logW[peak] + float64(o.lo+peak)*logPsi + math.Log(sum)
}

// logLR is the interval's log likelihood ratio of odds ratio psi against psi0.
func (o oddsInterval) logLR(psi, psi0 float64) float64 {
	if !o.usable {
		return 0
	}
	lp, lp0 := math.Log(psi), math.Log(psi0)
	norm0 := o.norm1
	if psi0 != 1 {
		norm0 = o.logNorm(lp0)
	}
	return float64(o.x)*(lp-lp0) - o.logNorm(lp) + norm0
}

func roundCount(v float64) int {
	if math.IsNaN(v) || v <= 0 {
		return 0
	}
	return int(math.Round(v))
}

func logChoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

// OddsForRatio is the odds ratio of a canary whose success rate is q times
// stable's rate p.
func OddsForRatio(q, p float64) float64 {
	return q * (1 - p) / (1 - q*p)
}

// PairPath is the outcome of the two guardrail tests, like RatioPath.
type PairPath struct {
	// WorseAt and NotWorseAt are the index of the interval at which each
	// test first crossed its bound, or -1.
	WorseAt, NotWorseAt int
	// WorseE and NotWorseE are the e-values after the last interval.
	WorseE, NotWorseE float64
	// Totals over the intervals.
	TotalS, TotalC, SuccessS, SuccessC float64
}

// Ratio is the canary's pooled success rate over stable's, NaN without data.
func (p PairPath) Ratio() float64 {
	if p.TotalS <= 0 || p.TotalC <= 0 || p.SuccessS <= 0 {
		return math.NaN()
	}
	return (p.SuccessC / p.TotalC) / (p.SuccessS / p.TotalS)
}

// RunPairTests runs the Worse test against odds ratio psiFail at level
// alpha and the NotWorse test against psiPass at level beta (psiFail ≤
// psiPass ≤ 1) over the intervals in order.
func RunPairTests(intervals []PairCounts, alpha, beta, psiFail, psiPass float64) PairPath {
	worse := []float64{0.97, 0.93, 0.88, 0.8, 0.7, 0.55, 0.4, 0.25}
	notWorse := []float64{1 / psiPass, 1.02, 1.05, 1.1, 1.2, 1.4}
	lw := make([]float64, len(worse))
	ln := make([]float64, len(notWorse))
	out := PairPath{WorseAt: -1, NotWorseAt: -1, WorseE: 1, NotWorseE: 1}
	for i, c := range intervals {
		out.TotalS += nonNaN(c.TotalS)
		out.TotalC += nonNaN(c.TotalC)
		out.SuccessS += nonNaN(c.SuccessS)
		out.SuccessC += nonNaN(c.SuccessC)
		o := c.prepare()
		if !o.usable {
			continue
		}
		for j, f := range worse {
			lw[j] += o.logLR(psiFail*f, psiFail)
		}
		for j, f := range notWorse {
			if psi := psiPass * f; psi > psiPass {
				ln[j] += o.logLR(psi, psiPass)
			}
		}
		out.WorseE, out.NotWorseE = meanExp(lw), meanExp(ln)
		if out.WorseAt < 0 && out.WorseE >= 1/alpha {
			out.WorseAt = i
		}
		if out.NotWorseAt < 0 && out.NotWorseE >= 1/beta {
			out.NotWorseAt = i
		}
	}
	return out
}

func nonNaN(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}
