package gates

import "math"

// This file makes the latency Worse test use more of each histogram than
// one split at stable's median.
//
// A canary 20% slower at every quantile (lognormal, σ 0.5) carries 0.041
// nats per canary request as exceedances of stable's median, and 0.063 in
// the whole histogram. Most of the difference is recovered by a few more
// cuts: at each cut c_j (ascending), the requests still "at risk" (above
// c_{j-1}; all requests at the first cut) either exceed c_j or stop.
// These continuation tables factor the histogram's multinomial likelihood
// exactly, and given the interval's requests and the tables before it,
// each table's canary exceedances follow Fisher's noncentral
// hypergeometric law in that cut's continuation odds ratio ψ_j, as in
// seqodds.go. Stable's levels cancel at every cut.
//
// The Worse test mixes one common ψ over the same grid as before, the
// product over intervals and cuts of the tables' likelihood ratios. Its
// null is that the canary is worse at no cut: ψ_j ≤ 1 for every j, that is
// a request that has reached c_{j-1} is no likelier to pass c_j on the
// canary than on stable (the canary is not slower in the hazard order on
// the cuts; a canary that is the same or faster everywhere is in it). Each
// table's ratio then has conditional mean at most 1 given everything
// before it (monotone likelihood ratio in ψ_j), so the product is a test
// supermartingale and Ville's inequality bounds the false reverts at α for
// ever, as before. With a common ψ over stable's cuts near its 20th, 50th
// and 80th percentiles, a canary 20% slower carries 0.056 nats per request.
//
// The NotWorse test and the margins keep the single split at the median:
// the margin is a ratio of exceedances of stable's median, as users write
// it, and promotion speed is unchanged.

// ordinalOdds is one interval's continuation tables, one per cut, read in
// one common odds ratio.
type ordinalOdds []oddsInterval

func (o ordinalOdds) informative() bool {
	for _, t := range o {
		if t.usable {
			return true
		}
	}
	return false
}

func (o ordinalOdds) logLR(psi, psi0 float64) float64 {
	l := 0.0
	for _, t := range o {
		l += t.logLR(psi, psi0)
	}
	return l
}

func (o ordinalOdds) addLogLik(ll, grid []float64) {
	for _, t := range o {
		t.addLogLik(ll, grid)
	}
}

// ordinal prepares each interval's tables.
func ordinal(levels [][]Counts) []ordinalOdds {
	out := make([]ordinalOdds, len(levels))
	for i, tables := range levels {
		out[i] = make(ordinalOdds, len(tables))
		for j, c := range tables {
			out[i][j] = exceedanceOdds(c)
		}
	}
	return out
}

// RunOrdinalExceedanceTests is RunExceedanceTests with the Worse test on
// every interval's continuation tables (levels[i], one Counts per cut,
// the at-risk requests as RequestsS/RequestsC) and the NotWorse test, as
// before, on the median split (median[i]). Both slices have one entry per
// interval.
func RunOrdinalExceedanceTests(levels [][]Counts, median []Counts, alpha, beta, rMin, p float64) RatioPath {
	worse := make([]intervalLR, len(levels))
	for i, o := range ordinal(levels) {
		worse[i] = o
	}
	notWorse := make([]intervalLR, len(median))
	for i, c := range median {
		notWorse[i] = exceedanceOdds(c)
	}
	return runRatioPath(median, worse, notWorse, worseGrid(), alpha, beta, marginOdds(rMin, p))
}

// EstimateOrdinal is EstimateExceedances on the Worse test's law: the
// common continuation odds ratio and its confidence sequence, read as rate
// ratios of exceedances of stable's median (share p). Its lower bound is
// above 1 exactly when that Worse test has crossed on these intervals.
func EstimateOrdinal(levels [][]Counts, alpha, p float64) (mle, lo, hi float64) {
	psi, psiLo, psiHi := estimate(ordinal(levels), alpha)
	return oddsAsRatio(psi, p), oddsAsRatio(psiLo, p), oddsAsRatio(psiHi, p)
}

// oddsAsRatio reads odds ratio ψ as the rate ratio of exceedances it means
// at stable's share p, ψ/(1−p+p·ψ) (the inverse of OddsForRatio).
func oddsAsRatio(psi, p float64) float64 {
	if p <= 0 || p >= 1 || math.IsNaN(p) {
		p = 0.5
	}
	if math.IsInf(psi, 1) {
		return 1 / p // every canary request exceeds
	}
	return psi / (1 - p + p*psi)
}

// RunOrdinalBurstDetector is RunBurstDetector on each interval's
// continuation tables (levels[i]) in one common odds ratio, its grid read
// as odds ratios. H0 is that the canary is worse at no cut in any
// interval; each interval's ratio is then a product of factors with
// conditional mean at most 1, and the e-detector's bound holds as before.
// report[i] is the split whose events the path counts.
func RunOrdinalBurstDetector(levels [][]Counts, report []Counts, alpha float64) BurstPath {
	lrs := make([]intervalLR, len(levels))
	for i, o := range ordinal(levels) {
		lrs[i] = o
	}
	return runBurstDetector(report, lrs, alpha, 0)
}
