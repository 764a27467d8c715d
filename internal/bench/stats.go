// Package bench measures decision quality: it runs the simulator over every
// scenario and many seeds for each policy, and prints the table `make bench`
// shows, with canarybot's judge side by side with the seed's threshold
// policy on identical traces.
package bench

import (
	"math"
	"slices"
)

// Run is one simulated rollout's outcome, as the bench needs it.
type Run struct {
	Scenario       string
	Seed           uint64
	Expected       string
	Outcome        string
	DecidedAfter   float64 // seconds since the canary's first traffic
	CanaryRequests int64
	DecidingGate   string
}

// Correct reports whether the run reached the scenario's expected outcome.
func (r Run) Correct() bool { return r.Outcome == r.Expected }

// Stats summarise one policy on one scenario.
type Stats struct {
	Runs, Correct int
	// BadPromotions: promoted where a revert was expected. FalseReverts:
	// reverted where a promotion was expected. Timeouts: no decision.
	BadPromotions, FalseReverts, Timeouts int
	// Canary requests served before the decision: median, p80, p95.
	MedianRequests, P80Requests, P95Requests float64
	// Simulated seconds to the decision, median.
	MedianSeconds float64
}

// CorrectRate is the share of runs with the expected outcome.
func (s Stats) CorrectRate() float64 {
	if s.Runs == 0 {
		return math.NaN()
	}
	return float64(s.Correct) / float64(s.Runs)
}

// Summarize folds runs of one policy and one scenario.
func Summarize(runs []Run) Stats {
	var s Stats
	var reqs, secs []float64
	for _, r := range runs {
		s.Runs++
		switch {
		case r.Correct():
			s.Correct++
		case r.Outcome == "promote":
			s.BadPromotions++
		case r.Outcome == "revert":
			s.FalseReverts++
		default:
			s.Timeouts++
		}
		reqs = append(reqs, float64(r.CanaryRequests))
		secs = append(secs, r.DecidedAfter)
	}
	s.MedianRequests, s.P80Requests, s.P95Requests = Quantile(reqs, 0.5), Quantile(reqs, 0.8), Quantile(reqs, 0.95)
	s.MedianSeconds = Quantile(secs, 0.5)
	return s
}

// Quantile is the nearest-rank quantile; NaN for no data.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
