package gates

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// eccGate fails when the canary's GPUs raised more uncorrected ECC errors
// since the rollout started than Max (0 by default: any).
func eccGate(g *canary.GaugeGate, s *signals.Series, start time.Time) canary.GateResult {
	total, samples := 0.0, 0
	var first time.Time
	for _, iv := range testIntervals(s, start) {
		n := iv.ECCUncorrected[signals.Canary]
		if math.IsNaN(n) {
			continue
		}
		samples++
		if n > 0 && first.IsZero() {
			first = iv.End
		}
		total += n
	}
	if samples == 0 {
		return canary.GateResult{Verdict: canary.VerdictRunning, Reason: "no canary ECC counters yet"}
	}
	r := canary.GateResult{Value: FormatValue(total), Condition: fmt.Sprintf("uncorrected ECC errors ≤ %g", *g.Max)}
	if total > *g.Max {
		r.Verdict = canary.VerdictFailed
		r.Reason = fmt.Sprintf("canary GPUs raised %.0f uncorrected ECC errors, the first by %s", total, first.UTC().Format(time.RFC3339))
		return r
	}
	r.Verdict, r.Reason = canary.VerdictSuccessful, fmt.Sprintf("%.0f uncorrected ECC errors on the canary's GPUs", total)
	return r
}

// throttleGate bounds the share of the canary's samples in the trailing
// Window in which one of Reasons held its GPUs' clocks down.
func throttleGate(g *canary.GaugeGate, s *signals.Series, start time.Time) canary.GateResult {
	ivs := testIntervals(s, start)
	if len(ivs) == 0 {
		return canary.GateResult{Verdict: canary.VerdictRunning, Reason: "no canary clock event samples yet"}
	}
	from := ivs[len(ivs)-1].End.Add(-g.Window.Duration)
	samples, throttled := 0, 0
	seen := map[string]bool{}
	for _, iv := range ivs {
		active := iv.Throttle[signals.Canary]
		if active == nil || !iv.End.After(from) {
			continue
		}
		samples++
		hit := false
		for _, reason := range active {
			if slices.Contains(g.Reasons, reason) {
				hit, seen[reason] = true, true
			}
		}
		if hit {
			throttled++
		}
	}
	if samples == 0 {
		return canary.GateResult{Verdict: canary.VerdictRunning, Reason: "no canary clock event samples yet"}
	}
	share := float64(throttled) / float64(samples)
	r := canary.GateResult{Value: FormatValue(share),
		Condition: fmt.Sprintf("share of %s throttled by %s ≤ %g", g.Window.Duration, strings.Join(g.Reasons, "|"), *g.Max)}
	reason := fmt.Sprintf("canary GPUs throttled in %d of %d samples over the last %s", throttled, samples, g.Window.Duration)
	if share > *g.Max {
		r.Verdict = canary.VerdictFailed
		r.Reason = reason + " (" + strings.Join(slices.Sorted(maps.Keys(seen)), ", ") + fmt.Sprintf("), above %g", *g.Max)
		return r
	}
	r.Verdict, r.Reason = canary.VerdictSuccessful, reason
	return r
}
