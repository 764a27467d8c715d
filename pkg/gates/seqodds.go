package gates

import "math"

// This file is the judge's test for latency exceedances: requests slower
// than a threshold taken from stable's history (its median bucket, or its
// p95 for latencyTail).
//
// Exceedances are not rare events. Above stable's median about half of
// the requests exceed, so the binomial share of seqtest.go, which is exact
// only for Poisson counts, is valid but conservative (the central
// hypergeometric is below the binomial in convex order) and gives away
// about half of the information: a canary 20% slower at every quantile
// (lognormal, σ 0.5) exceeds stable's median 64% of the time, which is
// 0.041 nats per canary request as Bernoulli trials at a 5% weight, and
// 0.019 as a Poisson share.
//
// Model. Each request exceeds independently, with probability p_s on
// stable and p_c on the canary in interval i. Conditional on both sides'
// requests and the interval's total exceedances, the canary's exceedances
// follow Fisher's noncentral hypergeometric distribution in the odds ratio
// ψ = [p_c/(1−p_c)] / [p_s/(1−p_s)] (seqrate.go), exact at any p and free
// of stable's level, like the binomial share. The null is the same as the
// rate-ratio test's, "the canary is not worse" (p_c ≤ p_s ⇔ ψ ≤ 1), and the
// product of the intervals' likelihood ratios is again a test martingale,
// mixed over the same grid (worseGrid, read as odds ratios), so Ville's
// inequality bounds the false alarms at α for ever, as before.
//
// Margins stay rate ratios of exceedance probabilities, as users write
// them; the NotWorse test's null is the odds ratio of that ratio at
// stable's exceedance share p before the test window (OddsForRatio), so
// the margin never depends on the data under test.

// informative: an interval with no exceedances, only exceedances, or an
// empty side carries no information about ψ.
func (o oddsInterval) informative() bool { return o.usable }

// RunExceedanceTests is RunRatioTests on the exact conditional likelihood
// of exceedances: the Worse test at level alpha against ψ ≤ 1 and the
// NotWorse test at level beta against the odds ratio of rate ratio rMin
// at stable's exceedance share p.
func RunExceedanceTests(intervals []Counts, alpha, beta, rMin, p float64) RatioPath {
	lrs := make([]intervalLR, len(intervals))
	for i, c := range intervals {
		lrs[i] = exceedanceOdds(c)
	}
	return runRatioPath(intervals, lrs, lrs, worseGrid(), alpha, beta, marginOdds(rMin, p))
}

// exceedanceOdds is one interval of exceedance counts as Bernoulli trials
// on each side.
func exceedanceOdds(c Counts) oddsInterval {
	return PairCounts{TotalS: c.RequestsS, TotalC: c.RequestsC, SuccessS: c.EventsS, SuccessC: c.EventsC}.prepare()
}

// marginOdds is the odds ratio of rate ratio rMin at share p. A ratio
// past 1/p is not a probability: the margin is capped just below it.
func marginOdds(rMin, p float64) float64 {
	if p <= 0 || p >= 1 || math.IsNaN(p) {
		p = 0.5
	}
	return OddsForRatio(math.Min(rMin, 0.99/p), p)
}

// addLogLik adds the interval's log likelihood ratios of each odds ratio
// in grid against ψ = 1.
func (o oddsInterval) addLogLik(ll, grid []float64) {
	if !o.usable {
		return
	}
	for k, psi := range grid {
		lp := math.Log(psi)
		ll[k] += float64(o.x)*lp - o.logNorm(lp) + o.norm1
	}
}

// EstimateExceedances is Estimate on the exact law of RunExceedanceTests:
// the odds ratio's maximum-likelihood value and (1-α) confidence sequence,
// reported as the rate ratios of exceedance probabilities they mean at
// stable's exceedance share p, ψ/(1−p+p·ψ) (the inverse of OddsForRatio).
// The map is increasing, so a sequence that excludes ψ = 1 excludes a rate
// ratio of 1: the bounds tell the same story as the tests.
func EstimateExceedances(intervals []Counts, alpha, p float64) (mle, lo, hi float64) {
	odds := make([]oddsInterval, len(intervals))
	for i, c := range intervals {
		odds[i] = exceedanceOdds(c)
	}
	psi, psiLo, psiHi := estimate(odds, alpha)
	return oddsAsRatio(psi, p), oddsAsRatio(psiLo, p), oddsAsRatio(psiHi, p)
}
