package gates

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// Burst detectors (seqdetect.go) run beside the judge's metrics: one on
// errors, one on latency above stable's p95 (above its median when the
// plan leaves latencyTail out of its metrics). Like latencyTail they are
// fail-only: a burst fails the gate, no burst never holds a promotion
// back, so they take a share of α and none of β.
const (
	burstErrors  = "errors/burst"
	burstLatency = "latency/burst"
)

// burstNames lists the burst detectors a judge with these metrics runs.
func burstNames(metrics []string) []string {
	var out []string
	if slices.Contains(metrics, canary.MetricErrors) {
		out = append(out, burstErrors)
	}
	if slices.Contains(metrics, canary.MetricLatency) || slices.Contains(metrics, canary.MetricLatencyTail) {
		out = append(out, burstLatency)
	}
	return out
}

// isBurst reports whether name is a burst detector's α share.
func isBurst(name string) bool { return strings.HasSuffix(name, "/burst") }

// burstVerdicts runs the burst detectors over the test window. first is
// the canary's first traffic, for the burst's start in the reason.
func burstVerdicts(j *canary.JudgeGate, s *signals.Series, start, first, testFrom time.Time, shares map[string]float64) []metricVerdict {
	var out []metricVerdict
	for _, name := range burstNames(j.Metrics) {
		base, what := canary.MetricErrors, "errors"
		switch {
		case name != burstLatency:
		case slices.Contains(j.Metrics, canary.MetricLatencyTail):
			base, what = canary.MetricLatencyTail, "requests slower than stable's p95"
		default: // a plan that leaves the tail out: its median threshold
			base, what = canary.MetricLatency, "requests slower than stable's median"
		}
		counts, _, why := metricCounts(base, s, start, testFrom)
		if counts == nil {
			if why != skipped {
				out = append(out, metricVerdict{name, canary.VerdictSuccessful, "no burst test yet: " + why})
			}
			continue
		}
		p := RunBurstDetector(counts, *j.Alpha*shares[name])
		if name == burstLatency {
			p = RunExceedanceBurstDetector(counts, *j.Alpha*shares[name])
		}
		if p.AlarmAt < 0 {
			out = append(out, metricVerdict{name, canary.VerdictSuccessful, fmt.Sprintf("no burst of %s (e %.3g)", what, p.E)})
			continue
		}
		ivs := testIntervals(s, testFrom)
		from := ivs[p.From].Start.Sub(first).Round(time.Second)
		out = append(out, metricVerdict{name, canary.VerdictFailed, fmt.Sprintf(
			"canary worse in a burst: %s from %s after its first traffic, %.0f on the canary / %.0f on stable (e %.3g)",
			what, from, p.EventsC, p.EventsS, p.E)})
	}
	return out
}

// watching holds a confirm gate until the canary has been watched for the
// judge's watch since its first traffic.
func watching(j *canary.JudgeGate, first, now time.Time) (metricVerdict, bool) {
	if j.Mode != canary.JudgeConfirm || j.Watch == nil || j.Watch.Duration <= 0 {
		return metricVerdict{}, false
	}
	if since := now.Sub(first); since < j.Watch.Duration {
		return metricVerdict{"watch", canary.VerdictRunning, fmt.Sprintf("watching: %s of %s since the canary's first traffic",
			since.Round(time.Second), j.Watch.Duration)}, true
	}
	return metricVerdict{}, false
}
