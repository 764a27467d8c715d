package sim

import (
	"math"
	"slices"
)

// Summary is one scenario's results over its seeds.
type Summary struct {
	Scenario string
	Expected string
	Runs     int
	// Correct counts runs whose outcome was the expected one.
	Correct int
	// Promoted, Reverted and TimedOut count outcomes.
	Promoted, Reverted, TimedOut int
	// MedianCanaryRequests and P80CanaryRequests are taken over the runs
	// that decided (promote or revert); zero when none did.
	MedianCanaryRequests, P80CanaryRequests int64
}

// CorrectRate is the share of runs with the expected outcome.
func (s Summary) CorrectRate() float64 {
	if s.Runs == 0 {
		return 0
	}
	return float64(s.Correct) / float64(s.Runs)
}

// Summarize groups results by scenario, in order of first appearance.
func Summarize(results []Result) []Summary {
	var out []Summary
	index := map[string]int{}
	requests := map[string][]int64{}
	for _, r := range results {
		i, ok := index[r.Scenario]
		if !ok {
			i = len(out)
			index[r.Scenario] = i
			out = append(out, Summary{Scenario: r.Scenario, Expected: r.Expected})
		}
		s := &out[i]
		s.Runs++
		if r.Correct {
			s.Correct++
		}
		switch r.Outcome {
		case OutcomePromote:
			s.Promoted++
		case OutcomeRevert:
			s.Reverted++
		default:
			s.TimedOut++
			continue
		}
		requests[r.Scenario] = append(requests[r.Scenario], r.CanaryRequests)
	}
	for i := range out {
		xs := requests[out[i].Scenario]
		out[i].MedianCanaryRequests, out[i].P80CanaryRequests = percentile(xs, 0.5), percentile(xs, 0.8)
	}
	return out
}

// percentile is the nearest-rank q-quantile of xs, or 0 when xs is empty.
func percentile(xs []int64, q float64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	k := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}
