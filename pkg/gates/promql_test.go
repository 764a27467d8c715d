package gates

import (
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestValidatePlanQueries(t *testing.T) {
	threshold := func(q string) canary.GateSpec {
		return canary.GateSpec{Name: "g", Type: canary.GateThreshold, Threshold: &canary.ThresholdGate{Query: q}}
	}
	const f0, f1 = "spec.gates[0].threshold.query: invalid PromQL: ", "spec.gates[1].threshold.query: invalid PromQL: "
	cases := []struct {
		name  string
		gates []canary.GateSpec
		want  []string // one error per entry, in order; none: valid
	}{
		{name: "valid", gates: []canary.GateSpec{
			threshold(`sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))`),
			threshold("histogram_quantile(0.95,\n  sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{role=\"canary\"}[1m])))"),
			threshold(`max(vllm:gpu_cache_usage_perc{role="canary"} @ end())`),
		}},
		{name: "no query to parse", gates: []canary.GateSpec{
			{Name: "s", Type: canary.GateThreshold, Threshold: &canary.ThresholdGate{Signal: &canary.SignalStat{Stat: canary.StatErrorRate}}},
			{Name: "j", Type: canary.GateJudge, Judge: &canary.JudgeGate{}},
		}},
		{name: "unclosed parenthesis", gates: []canary.GateSpec{threshold("up"), threshold("sum(rate(x[5m])")},
			want: []string{f1 + "1:16: parse error: unclosed left parenthesis"}},
		{name: "instant vector to rate", gates: []canary.GateSpec{threshold("rate(x)")},
			want: []string{f0 + `1:6: parse error: expected type range vector in call to function "rate", got instant vector`}},
		{name: "unknown function", gates: []canary.GateSpec{threshold("rte(x[5m])")},
			want: []string{f0 + `1:1: parse error: unknown function with name "rte"`}},
		{name: "position on a later line", gates: []canary.GateSpec{threshold("sum(\n  rate(x[5m]))\n  / on() )")},
			want: []string{f0 + "3:11: parse error: unexpected right parenthesis ')'"}},
		{name: "every gate", gates: []canary.GateSpec{threshold("x[5m"), threshold("up ==")},
			want: []string{f0 + "1:5: parse error: unclosed left bracket", f1 + "1:6: parse error: unexpected end of input"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := &canary.CanaryPlan{Spec: canary.PlanSpec{Gates: tc.gates}}
			err := ValidatePlanQueries(plan)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("valid queries rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", tc.want)
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
}
