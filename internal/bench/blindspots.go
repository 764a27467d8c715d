package bench

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
)

// BlindSpot is a failure class a gate is documented not to see, or to see
// only under an assumption the simulator always meets. This list is the
// one place they are kept; docs/judge.md ("What the bench cannot see")
// points here, and `canarybot bench` prints every one that no scenario it
// ran covers, so a reader knows what the decision table leaves untested.
type BlindSpot struct {
	// Gate is the gate (or part of the judge) whose blind spot it is.
	Gate string
	// Class is the failure class, Why the reason the gate misses it.
	Class, Why string
	// Scenarios, any of which covers the class when the bench runs it.
	Scenarios []string
}

// BlindSpots are the gates' documented blind spots, as of this version.
func BlindSpots() []BlindSpot {
	return []BlindSpot{
		{Gate: "judge", Class: "load-dependent regression (fine at a small weight, fails at full traffic)",
			Why: "the judge compares the sides at the weights the plan sets; the simulator's behaviour never depends on load, and nothing is measured at 100%"},
		{Gate: "judge", Class: "fault that first shows after the plan's watch (rare bursts, slow leaks)",
			Why:       "the default plan watches about 8 minutes (docs/judge.md); a burst that recurs less often than every few minutes may fall after the promotion",
			Scenarios: []string{"burst-errors-sparse", "burst-latency-sparse"}},
		{Gate: "judge", Class: "biased routing (sticky sessions, a segment routed to the canary)",
			Why: "the tests assume requests are split at random by weight; the simulator always splits so"},
		{Gate: "judge", Class: "regression in a segment of the traffic (one tenant, long prompts) too small to move the totals",
			Why:       "the judge tests whole-side counts; a mixture tail is the only segment the bench models",
			Scenarios: []string{"latency-tail"}},
		{Gate: "judge", Class: "TPOT-only regression (time per output token)",
			Why: "tpot is opt-in (judge.metrics); no scenario slows only the decode"},
		{Gate: "judge", Class: "failures that are not 5xx (200 with an empty or wrong body, client timeouts)",
			Why: "the errors metric counts the server's 5xx; quality needs guardrails or the drift gate"},
		{Gate: "judge", Class: "counter resets and scrape gaps on one side only",
			Why: "Prometheus increase() extrapolates at window edges and across restarts; the simulator's counts are exact"},
		{Gate: "judge", Class: "canary-only metrics outage (the canary stops reporting, stable does not)",
			Why:       "the bench's outage hides both sides; a metric neither side reports is skipped",
			Scenarios: []string{"metrics-outage-canary"}},
		{Gate: "drift", Class: "wrong answers with the same class mix",
			Why: "PSI compares prediction-class shares only; accuracy needs labels (guardrails with delayed feedback)"},
		{Gate: "gauge (kv-cache, gpu-memory)", Class: "non-linear growth (a step, an exponential)",
			Why: "the horizon projects a linear trend; the simulator's growth is linear"},
		{Gate: "gauge (gpu-xid)", Class: "an Xid code not in the plan's list",
			Why:       "only the listed codes fail the gate; the bench raises Xid 79 only",
			Scenarios: []string{"gpu-xid-unlisted"}},
		{Gate: "threshold (seed policy)", Class: "any regression inside the fixed limits",
			Why:       "a threshold passes whatever stays under it; the judge's scenarios show this for errors and latency",
			Scenarios: []string{"error-rate-10x", "latency-plus-40"}},
	}
}

// RenderBlindSpots prints the blind spots that none of the scenarios ran
// covers.
func RenderBlindSpots(w io.Writer, ran []string) {
	var open []BlindSpot
	for _, b := range BlindSpots() {
		if !slices.ContainsFunc(b.Scenarios, func(s string) bool { return slices.Contains(ran, s) }) {
			open = append(open, b)
		}
	}
	fmt.Fprintf(w, "What the bench cannot see: %d failure classes with no scenario (internal/bench/blindspots.go).\n", len(open))
	if len(open) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  gate\tfailure class\twhy it is unseen")
	for _, b := range open {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", b.Gate, b.Class, b.Why)
	}
	tw.Flush()
}
