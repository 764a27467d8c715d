package gates

import (
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// The estimates a judge writes into its reason read back: the failing
// metric marked worse, with its lower bound above 1, every estimate inside
// its bounds.
func TestParseJudgeEstimatesReadsTheJudgesReason(t *testing.T) {
	start := epoch.Add(10 * time.Minute)
	base := side{errRate: 0.001, median: 0.3, sigma: 0.5}
	for _, tc := range []struct {
		name   string
		canary side
		worse  string
	}{
		{"pass", base, ""},
		{"errors fail", side{errRate: 0.01, median: 0.3, sigma: 0.5}, "errors"},
		{"latency fail", side{errRate: 0.001, median: 0.36, sigma: 0.5}, "latency"},
	} {
		r, _ := runJudge(t, judgeGate("errors", "latency"), synth(42, 20, 0.3, base, tc.canary, start), start, 45*time.Minute)
		if r.Verdict == canary.VerdictRunning {
			t.Fatalf("%s: the judge did not decide: %s", tc.name, r.Reason)
		}
		es := ParseJudgeEstimates(r.Reason)
		if len(es) == 0 {
			t.Fatalf("%s: no estimate in %q", tc.name, r.Reason)
		}
		for _, e := range es {
			if e.Worse && !(e.Low > 1) {
				t.Errorf("%s: %s was found worse, but its bounds include 1: %q", tc.name, e.Metric, r.Reason)
			}
			if e.Worse != (e.Metric == tc.worse) || e.Low > e.Estimate || e.Estimate > e.High || e.CanaryRequests <= 0 || e.StableRequests <= 0 {
				t.Errorf("%s: %+v from %q", tc.name, e, r.Reason)
			}
		}
	}
	if es := ParseJudgeEstimates("collecting: errors ratio over 10 canary / 90 stable requests (e 1.2)"); es != nil {
		t.Errorf("a running test's reason gave %+v", es)
	}
	es := ParseJudgeEstimates("not worse: canary rate 0.1% below 1%; errors ratio 0.50 [0.00, +Inf] over 300 canary / 900 stable requests (e 0.5)")
	if len(es) != 1 || es[0].Worse || es[0].High < 1e300 || es[0].Low != 0 {
		t.Errorf("floor pass: %+v", es)
	}
}
