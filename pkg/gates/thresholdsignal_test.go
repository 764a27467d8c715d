package gates

import (
	"context"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

func TestQuantileInterpolatesLikePrometheus(t *testing.T) {
	// 10 observations in (0.1, 0.2] and 10 in (0.2, 0.3]: p50 is 0.2, p75 is 0.25.
	counts := []float64{0, 10, 10, 0}
	b := []float64{0.1, 0.2, 0.3}
	for q, want := range map[float64]float64{0.5: 0.2, 0.75: 0.25, 1: 0.3} {
		if got, ok := quantile(counts, b, q); !ok || math.Abs(got-want) > 1e-9 {
			t.Errorf("q%.2f = %g, want %g", q, got, want)
		}
	}
	if _, ok := quantile([]float64{0, 0}, b, 0.5); ok {
		t.Error("no observations must be no data")
	}
}

// The seed's threshold policy, measured on signals: Argo Rollouts
// semantics (interval, count, failureLimit) over canary statistics.
func TestSignalThresholds(t *testing.T) {
	start := epoch.Add(10 * time.Minute)
	base := side{errRate: 0.001, median: 0.3, sigma: 0.5, kv: 0.4}
	bad := side{errRate: 0.08, median: 0.3, sigma: 0.5, kv: 0.4}
	plan := func(stat, cond string) canary.GateSpec {
		p := &canary.CanaryPlan{Spec: canary.PlanSpec{Signals: judgeGate().Signals, Gates: []canary.GateSpec{{
			Name: stat, Threshold: &canary.ThresholdGate{Signal: &canary.SignalStat{Stat: stat}, SuccessCondition: cond,
				Interval: canary.D(time.Minute), Count: intp(5), FailureLimit: intp(2)}}}}}
		p.Default()
		return p.Spec.Gates[0]
	}
	eval := func(g canary.GateSpec, src signals.Source) canary.GateResult {
		th := NewThreshold(nil, slog.New(slog.DiscardHandler),
			WithSignals(func(*canary.SignalsSpec) (signals.Source, error) { return src, nil }))
		r, err := th.Evaluate(context.Background(), g, canary.Window{Start: start, Now: start.Add(6 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	good, worse := synth(5, 20, 0.3, base, base, start), synth(5, 20, 0.3, base, bad, start)
	if r := eval(plan(canary.StatLatencyP95, "result < 2"), good); r.Verdict != canary.VerdictSuccessful || r.Successful != 5 {
		t.Errorf("p95 < 2s: %s %s", r.Verdict, r.Reason)
	}
	if r := eval(plan(canary.StatErrorRate, "result < 0.05"), worse); r.Verdict != canary.VerdictFailed || r.Failed != 3 {
		t.Errorf("8%% errors against < 5%%: %s (%d failed) %s", r.Verdict, r.Failed, r.Reason)
	}
	if r := eval(plan(canary.StatKVCache, "result < 0.9"), good); r.Verdict != canary.VerdictSuccessful {
		t.Errorf("kv 0.4 < 0.9: %s %s", r.Verdict, r.Reason)
	}
}

func intp(i int) *int { return &i }
