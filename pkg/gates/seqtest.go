package gates

import (
	"math"
	"slices"
)

// This file is the statistics of the canary-vs-stable judge: a one-sided,
// anytime-valid test on a rate ratio, in the style of the mixture
// sequential probability ratio test (mSPRT) of Lindon et al., "Rapid
// regression detection in software deployments through sequential
// testing" (KDD 2022), and of Robbins' mixture martingales.
//
// Model. In interval i the stable side serves n_s requests and the canary
// n_c. Some requests are "events": errors, or latencies above a threshold.
// Events arrive at rate λ_s per stable request and λ_c per canary request;
// the parameter is the ratio r = λ_c/λ_s. Conditional on the requests and
// on the total number of events in the interval, the canary's share of the
// events is binomial with success probability
//
//	p_i(r) = r·n_c / (r·n_c + n_s)
//
// whatever λ_s is, so the stable side's own level cancels out (it is a
// nuisance the test never has to estimate), and traffic weights may change
// from one interval to the next.
//
// Likelihood ratio. For a fixed r the product over intervals of
// p_i(r)^e_c·(1-p_i(r))^e_s / (p_i(r0)^e_c·(1-p_i(r0))^e_s) is a
// nonnegative martingale with mean 1 when the true ratio is r0, and a
// supermartingale when the true ratio lies on the other side of r0 than r
// (the binomial family has a monotone likelihood ratio in r). A mixture of
// such ratios over a prior on r is again one, so by Ville's inequality the
// probability that it ever reaches 1/α is at most α: the test may look
// after every interval, forever, and keep its false-alarm rate.
//
// Two tests run side by side on the same data:
//   - Worse: H0 r ≤ 1 ("the canary is not worse") against r > 1, mixing
//     over WorseGrid. Crossing 1/α is evidence the canary is worse: Failed.
//   - NotWorse: H0 r ≥ rMin ("the canary is worse by at least the margin")
//     against r < rMin, mixing over a grid below rMin that includes r = 1.
//     Crossing 1/β is evidence the canary is at most marginally worse.

// worseGrid is the prior support of the Worse test: canary event rates from
// 5% to 20 times stable's, equally weighted.
func worseGrid() []float64 {
	return []float64{1.05, 1.1, 1.2, 1.35, 1.5, 1.75, 2, 2.5, 3, 4, 6, 10, 20}
}

// Counts are one interval's requests and events on each side.
type Counts struct {
	RequestsS, RequestsC float64
	EventsS, EventsC     float64
}

// informative: an interval with no events, or with one side empty,
// carries no information about r.
func (c Counts) informative() bool {
	return c.RequestsC > 0 && c.RequestsS > 0 && c.EventsC+c.EventsS > 0
}

// logLR is the log likelihood ratio of one interval for ratio r against r0.
func (c Counts) logLR(r, r0 float64) float64 {
	if !c.informative() {
		return 0
	}
	p := r * c.RequestsC / (r*c.RequestsC + c.RequestsS)
	p0 := r0 * c.RequestsC / (r0*c.RequestsC + c.RequestsS)
	return c.EventsC*math.Log(p/p0) + c.EventsS*math.Log((1-p)/(1-p0))
}

// RatioPath runs the two tests over intervals in order and reports where
// each first crossed its bound, as a stateless function of the data: the
// same intervals always give the same answer.
type RatioPath struct {
	// WorseAt and NotWorseAt are the index of the interval at which each
	// test first crossed its bound, or -1.
	WorseAt, NotWorseAt int
	// WorseE and NotWorseE are the e-values after the last interval.
	WorseE, NotWorseE float64
	// EventsC, EventsS, RequestsC, RequestsS are the totals.
	EventsC, EventsS, RequestsC, RequestsS float64
}

// RunRatioTests evaluates the Worse test at level alpha and the NotWorse
// test with margin rMin at level beta over the intervals.
func RunRatioTests(intervals []Counts, alpha, beta, rMin float64) RatioPath {
	lrs := make([]intervalLR, len(intervals))
	for i, c := range intervals {
		lrs[i] = c
	}
	return runRatioPath(intervals, lrs, lrs, worseGrid(), alpha, beta, rMin)
}

// intervalLR is one interval's likelihood ratio in the test's parameter:
// the rate ratio r here, the odds ratio ψ in seqodds.go.
type intervalLR interface {
	informative() bool
	logLR(r, r0 float64) float64
}

// runRatioPath runs both tests on the intervals' likelihood ratios (one
// per interval; worse for the Worse test, mixing over worseGrid, and
// notWorse for the NotWorse test against the margin m), both in the
// likelihood's own parameter. intervals give the totals reported.
func runRatioPath(intervals []Counts, worse, notWorse []intervalLR, worseGrid []float64, alpha, beta, m float64) RatioPath {
	notWorseGrid := notWorseGrid(m)
	lw := make([]float64, len(worseGrid))
	ln := make([]float64, len(notWorseGrid))
	out := RatioPath{WorseAt: -1, NotWorseAt: -1, WorseE: 1, NotWorseE: 1}
	for i, c := range intervals {
		out.EventsC += c.EventsC
		out.EventsS += c.EventsS
		out.RequestsC += c.RequestsC
		out.RequestsS += c.RequestsS
		w, nw := worse[i], notWorse[i]
		if !w.informative() && !nw.informative() {
			continue
		}
		for j, r := range worseGrid {
			lw[j] += w.logLR(r, 1)
		}
		for j, r := range notWorseGrid {
			ln[j] += nw.logLR(r, m)
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

// Estimate returns the maximum-likelihood ratio over the intervals and the
// bounds of its (1-α) confidence sequence. It costs more than the tests, so
// callers compute it for the verdicts they report.
func Estimate(intervals []Counts, alpha float64) (mle, lo, hi float64) {
	return estimate(intervals, alpha)
}

// notWorseGrid is the NotWorse test's prior support: ratios below rMin
// down to a third of it, always including 1 (identical builds).
func notWorseGrid(rMin float64) []float64 {
	g := []float64{1}
	for _, f := range []float64{0.97, 0.93, 0.88, 0.8, 0.7, 0.55, 0.4} {
		if r := rMin * f; math.Abs(r-1) > 1e-9 {
			g = append(g, r)
		}
	}
	return g
}

// meanExp is log-sum-exp divided by n, guarded against overflow.
func meanExp(ls []float64) float64 {
	m := math.Inf(-1)
	for _, l := range ls {
		m = math.Max(m, l)
	}
	if math.IsInf(m, -1) {
		return 0
	}
	s := 0.0
	for _, l := range ls {
		s += math.Exp(l - m)
	}
	v := math.Exp(m) * s / float64(len(ls))
	if math.IsInf(v, 1) || math.IsNaN(v) {
		return math.MaxFloat64
	}
	return v
}

// estimateGrid is where estimate evaluates the likelihood, sorted: 241
// log-spaced parameters from 1/50 to 50 (1 among them), and the Worse
// test's alternatives and their inverses, so that the lower bound's test at
// 1 is the Worse test itself, on exact likelihoods.
func estimateGrid() []float64 {
	const n = 241
	grid := make([]float64, 0, n+2*len(worseGrid()))
	for k := range n {
		grid = append(grid, math.Exp(math.Log(50)*(float64(k)/float64(n-1)*2-1)))
	}
	for _, g := range worseGrid() {
		grid = append(grid, g, 1/g)
	}
	slices.Sort(grid)
	return slices.CompactFunc(grid, func(a, b float64) bool { return math.Abs(a-b) < 1e-12 })
}

// gridLogLik is what estimate needs of an interval: its log likelihood
// ratio against 1 at every point of grid, added into ll.
type gridLogLik interface {
	addLogLik(ll, grid []float64)
}

// addLogLik adds the interval's log likelihood ratios against r = 1.
func (c Counts) addLogLik(ll, grid []float64) {
	for k, r := range grid {
		ll[k] += c.logLR(r, 1)
	}
}

// estimate returns the maximum-likelihood parameter (a rate ratio, or an
// odds ratio) and its confidence bounds, each the inversion of the
// one-sided mixture test the judge decides with:
//   - lo is the least r0 that the test of "at most r0" against r0·g, g in
//     worseGrid, has not rejected at level α. At r0 = 1 that test is the
//     Worse test, so lo > 1 exactly when the Worse test's e-value on these
//     intervals is at least 1/α.
//   - hi is the greatest r0 that the mirror test, of "at least r0" against
//     r0/g, has not rejected.
//
// Each bound holds at every time with probability 1-α (Ville), the pair
// with 1-2α. The log likelihood is concave in the log of the parameter
// (an exponential family in it), so each test's e-value is monotone in r0
// and the accepted values form one interval. A bound at the grid's end
// is reported as 0 or +Inf (the data rule out nothing beyond it); lo or hi
// is NaN when every grid value is rejected.
func estimate[L interface {
	intervalLR
	gridLogLik
}](intervals []L, alpha float64) (mle, lo, hi float64) {
	grid := estimateGrid()
	logGrid := make([]float64, len(grid))
	for k, r := range grid {
		logGrid[k] = math.Log(r)
	}
	ll := make([]float64, len(grid))
	for _, c := range intervals {
		if c.informative() {
			c.addLogLik(ll, grid)
		}
	}
	best := 0
	for k := range grid {
		if ll[k] > ll[best] {
			best = k
		}
	}
	up := worseGrid()
	down := make([]float64, len(up))
	for i, g := range up {
		down[i] = 1 / g
	}
	ls := make([]float64, len(up))
	rejects := func(k int, factors []float64) bool {
		for i, f := range factors {
			ls[i] = logLRAt(ll, logGrid, logGrid[k]+math.Log(f)) - ll[k]
		}
		return meanExp(ls) >= 1/alpha
	}
	lo, hi = math.NaN(), math.NaN()
	for k := range grid {
		if !rejects(k, up) {
			lo = grid[k]
			if k == 0 { // nothing rejected below the grid either
				lo = 0
			}
			break
		}
	}
	for k := len(grid) - 1; k >= 0; k-- {
		if !rejects(k, down) {
			hi = grid[k]
			if k == len(grid)-1 {
				hi = math.Inf(1)
			}
			break
		}
	}
	return grid[best], lo, hi
}

// logLRAt interpolates the log likelihood ll, tabulated at the sorted
// logs logGrid, linearly at log parameter x, and holds it flat past the
// ends. A grid point is read exactly.
func logLRAt(ll, logGrid []float64, x float64) float64 {
	n := len(logGrid)
	if x <= logGrid[0] {
		return ll[0]
	}
	if x >= logGrid[n-1] {
		return ll[n-1]
	}
	i, found := slices.BinarySearch(logGrid, x)
	if found || math.Abs(logGrid[i]-x) < 1e-12 {
		return ll[i]
	}
	if math.Abs(x-logGrid[i-1]) < 1e-12 {
		return ll[i-1]
	}
	f := (x - logGrid[i-1]) / (logGrid[i] - logGrid[i-1])
	return ll[i-1]*(1-f) + ll[i]*f
}

// RunRateBound tests H0 "the canary's event rate is at least bound"
// against lower rates, mixing over bound·{0.05 … 0.8}, and returns the
// index of the interval at which it first crossed 1/beta (or -1) and the
// final e-value. Crossing is evidence that the canary's rate is below
// bound: for rare events (a 0.1% error rate) it concludes long before a
// ratio against stable's few events can.
func RunRateBound(intervals []Counts, bound, beta float64) (int, float64) {
	alts := []float64{0.05, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8}
	ls := make([]float64, len(alts))
	at, e := -1, 1.0
	if bound <= 0 || bound >= 1 {
		return at, e
	}
	for i, c := range intervals {
		if c.RequestsC <= 0 {
			continue
		}
		k, n := c.EventsC, c.RequestsC
		for j, f := range alts {
			p := bound * f
			ls[j] += k*math.Log(p/bound) + (n-k)*math.Log((1-p)/(1-bound))
		}
		e = meanExp(ls)
		if at < 0 && e >= 1/beta {
			at = i
		}
	}
	return at, e
}
