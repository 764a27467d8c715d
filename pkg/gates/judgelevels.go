package gates

import (
	"math"
	"slices"

	"github.com/canarybot/canarybot/pkg/signals"
)

// The latency Worse test's cuts (seqordinal.go): stable's median bucket
// and, where the histogram has them, the bucket bounds nearest stable's
// 20th and 80th percentiles. Three cuts recover most of what the whole
// histogram says about a shift (0.056 of 0.063 nats per canary request
// for a canary 20% slower, lognormal σ 0.5, against 0.041 for the median
// alone) at three times the median test's cost; a fourth adds 4%.
const (
	lowCutSurvival  = 0.8  // stable's share above the low cut, ideally
	highCutSurvival = 0.2  // and above the high cut
	cutTolerance    = 0.15 // how far a bucket bound may miss either
)

// levelCuts returns the ascending bucket indices of the Worse test's cuts
// in stable's reference histogram ref, whose median bucket is k. A side
// cut is left out when no bucket bound comes within cutTolerance of its
// share: coarse buckets then leave the median split alone, as before.
func levelCuts(ref []float64, k int) []int {
	total := signals.Sum(ref)
	low, high := -1, -1
	lowGap, highGap := cutTolerance, cutTolerance
	for c := range max(len(ref)-1, 0) {
		surv := above(ref, c) / total
		if gap := math.Abs(surv - lowCutSurvival); c < k && gap <= lowGap {
			low, lowGap = c, gap
		}
		if gap := math.Abs(surv - highCutSurvival); c > k && gap <= highGap {
			high, highGap = c, gap
		}
	}
	cuts := []int{k}
	if low >= 0 {
		cuts = append([]int{low}, cuts...)
	}
	if high >= 0 {
		cuts = append(cuts, high)
	}
	return slices.Clip(cuts)
}

// continuationTables splits one interval's histograms (stable, canary) at
// the ascending cuts: table j counts the requests above cut j-1 (all
// requests for j = 0) as at risk, and those above cut j as events.
func continuationTables(h [2][]float64, cuts []int) []Counts {
	out := make([]Counts, len(cuts))
	riskS, riskC := signals.Sum(h[signals.Stable]), signals.Sum(h[signals.Canary])
	for j, c := range cuts {
		exS, exC := above(h[signals.Stable], c), above(h[signals.Canary], c)
		out[j] = Counts{RequestsS: riskS, RequestsC: riskC, EventsS: exS, EventsC: exC}
		riskS, riskC = exS, exC
	}
	return out
}

// withCut adds cut k to the ascending cuts, once.
func withCut(cuts []int, k int) []int {
	i, found := slices.BinarySearch(cuts, k)
	if found {
		return cuts
	}
	return slices.Insert(slices.Clone(cuts), i, k)
}
