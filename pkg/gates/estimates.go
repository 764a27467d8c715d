package gates

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// JudgeEstimate is one metric's estimate as a judge gate's result reports
// it: the ratio of the canary's event rate to stable's with the bounds of
// its confidence sequence, the requests the test read, and whether the
// test found the canary worse. The judge writes its estimates only into
// the human-readable reason that the rollout state and the pull requests
// record; ParseJudgeEstimates reads them back from there.
type JudgeEstimate struct {
	Metric                         string
	Estimate, Low, High            float64
	CanaryRequests, StableRequests float64
	// Worse: the test found the canary worse (the gate failed on it).
	Worse bool
}

// withEstimate fills a metric detail's {estimate} placeholder as
// ParseJudgeEstimates reads it back.
func withEstimate(detail string, est, lo, hi float64) string {
	return strings.Replace(detail, "{estimate}", fmt.Sprintf("%.2f [%.2f, %.2f]", est, lo, hi), 1)
}

// estimateRe matches one metric's estimate in a judge reason (see
// assessRatio and withEstimate); "canary worse: " right before it marks
// the metric that failed.
var estimateRe = regexp.MustCompile(`(canary worse: )?([A-Za-z]+) ratio (\S+) \[([^,\]]+), ([^\]]+)\] over ([0-9]+) canary / ([0-9]+) stable requests`)

// ParseJudgeEstimates returns the estimates a judge gate's reason holds,
// in order: none while its tests run, one per concluded metric after.
func ParseJudgeEstimates(reason string) []JudgeEstimate {
	var out []JudgeEstimate
	for _, m := range estimateRe.FindAllStringSubmatch(reason, -1) {
		var f [5]float64
		ok := true
		for i, s := range m[3:8] {
			v, err := strconv.ParseFloat(s, 64)
			f[i], ok = v, ok && err == nil
		}
		if !ok {
			continue
		}
		out = append(out, JudgeEstimate{Metric: m[2], Estimate: f[0], Low: f[1], High: f[2],
			CanaryRequests: f[3], StableRequests: f[4], Worse: m[1] != ""})
	}
	return out
}
