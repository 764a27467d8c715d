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
// errors, one on latency. The latency detector reads each interval's
// continuation tables (seqordinal.go) at the latency Worse test's cuts and
// at stable's p95 when the plan lists latencyTail: a slow spell pushes
// requests past every cut, and the tables together carry about 1.8 times
// the evidence per request of the p95 split alone for a canary twice as
// slow (lognormal, σ 0.5). It reports the requests above stable's p95
// (above its median when the plan leaves latencyTail out of its metrics).
// Like latencyTail they are
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
		d, why := metricCounts(base, s, start, testFrom)
		counts := d.counts
		if counts == nil {
			if why != skipped {
				out = append(out, metricVerdict{name, canary.VerdictSuccessful, "no burst test yet: " + why})
			}
			continue
		}
		var p BurstPath
		if name == burstLatency {
			p = RunOrdinalBurstDetector(burstTables(d, s, start, testFrom), counts, *j.Alpha*shares[name])
		} else {
			p = RunBurstDetector(counts, *j.Alpha*shares[name])
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

// burstTables are the latency burst detector's tables: each test
// interval's continuation tables at the latency Worse test's cuts (stable's
// median and, where the buckets allow, near its 20th and 80th percentiles)
// and at the reported threshold of base (stable's p95 for latencyTail).
func burstTables(base metricData, s *signals.Series, start, testFrom time.Time) [][]Counts {
	cuts := []int{base.k}
	if med, _ := metricCounts(canary.MetricLatency, s, start, testFrom); med.ref != nil {
		cuts = withCut(levelCuts(med.ref, med.k), base.k)
	}
	out := make([][]Counts, len(base.hists))
	for i, h := range base.hists {
		out[i] = continuationTables(h, cuts)
	}
	return out
}
