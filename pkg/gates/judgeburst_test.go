package gates

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// burstSeries is 100 stable and 100 canary requests every 10 s from the
// rollout start, one error on each side every 100 s, and from 4m to 4m40s
// a burst of 5 errors an interval on the canary, on stable too when both.
func burstSeries(rollout time.Time, canaryBurst, bothBurst bool) seriesFn {
	return func(start, end time.Time, step time.Duration) *signals.Series {
		s := &signals.Series{}
		for t := epoch; t.Before(end); t = t.Add(step) {
			iv := signals.Interval{Start: t, End: t.Add(step), KVCache: signals.NaN2(), QueueDepth: signals.NaN2(),
				GPUMemoryUsed: signals.NaN2(), GPUTempC: signals.NaN2(), ECCUncorrected: signals.NaN2()}
			iv.Requests = [2]float64{100, 0}
			since := t.Sub(rollout)
			if since >= 0 {
				iv.Requests[signals.Canary] = 100
				if since%(100*time.Second) == 0 {
					iv.Errors = [2]float64{1, 1}
				}
				if since >= 4*time.Minute && since < 4*time.Minute+40*time.Second {
					if canaryBurst || bothBurst {
						iv.Errors[signals.Canary] += 5
					}
					if bothBurst {
						iv.Errors[signals.Stable] += 5
					}
				}
			}
			if iv.End.After(start) {
				s.Intervals = append(s.Intervals, iv)
			}
		}
		return s
	}
}

func evalAt(t *testing.T, gate canary.GateSpec, src signals.Source, rollout time.Time, at time.Duration) canary.GateResult {
	t.Helper()
	g := &SignalGates{SourceFor: func(*canary.SignalsSpec) (signals.Source, error) { return src, nil }}
	r, err := g.Evaluate(context.Background(), gate, canary.Window{Start: rollout, Now: rollout.Add(at), RolloutStart: rollout})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A burst of errors on the canary alone fails the gate on the burst
// detector, which names when it began; the same burst on both sides, and
// no burst at all, do not.
func TestJudgeBurstDetector(t *testing.T) {
	rollout := epoch.Add(10 * time.Minute)
	gate := judgeGate(canary.MetricErrors)
	for _, tc := range []struct {
		name          string
		canary, both  bool
		wantBurstFail bool
	}{{"canary burst", true, false, true}, {"shared burst", false, true, false}, {"no burst", false, false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			before := evalAt(t, gate, burstSeries(rollout, tc.canary, tc.both), rollout, 3*time.Minute)
			if before.Verdict == canary.VerdictFailed {
				t.Fatalf("before any burst: %s (%s)", before.Verdict, before.Reason)
			}
			r := evalAt(t, gate, burstSeries(rollout, tc.canary, tc.both), rollout, 6*time.Minute)
			failed := r.Verdict == canary.VerdictFailed && r.Value == burstErrors
			if failed != tc.wantBurstFail {
				t.Fatalf("after the burst: %s by %q (%s), want burst failure %v", r.Verdict, r.Value, r.Reason, tc.wantBurstFail)
			}
			if failed && !strings.Contains(r.Reason, "canary worse in a burst: errors from 4m0s after its first traffic") {
				t.Errorf("reason %q does not say when the burst began", r.Reason)
			}
			if !failed && !strings.Contains(r.Reason, "no burst of errors") {
				t.Errorf("reason %q does not report the detector", r.Reason)
			}
		})
	}
}

// The bursts' α shares come out of the same budget as the metrics'.
func TestBurstNamesShareAlpha(t *testing.T) {
	for _, tc := range []struct {
		metrics []string
		want    []string
	}{
		{[]string{"errors", "latency", "ttft", "latencyTail"}, []string{burstErrors, burstLatency}},
		{[]string{"latency"}, []string{burstLatency}},
		{[]string{"errors"}, []string{burstErrors}},
		{[]string{"ttft"}, nil},
	} {
		got := burstNames(tc.metrics)
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("burstNames(%v) = %v, want %v", tc.metrics, got, tc.want)
		}
		sum := 0.0
		for _, v := range alphaShares(append(tc.metrics, got...)) {
			sum += v
		}
		if sum < 0.999999 || sum > 1.000001 {
			t.Errorf("%v: shares sum to %v", tc.metrics, sum)
		}
	}
}

// watch holds a confirm gate until the canary has been watched that long,
// and never holds a screen gate.
func TestJudgeWatch(t *testing.T) {
	rollout := epoch.Add(10 * time.Minute)
	gate := judgeGate(canary.MetricErrors)
	gate.Judge.Watch = canary.D(8 * time.Minute)
	src := burstSeries(rollout, false, false)
	if r := evalAt(t, gate, src, rollout, 7*time.Minute); r.Verdict != canary.VerdictRunning || !strings.Contains(r.Reason, "watching: 7m0s of 8m0s") {
		t.Fatalf("at 7m: %s (%s), want Running while watching", r.Verdict, r.Reason)
	}
	if r := evalAt(t, gate, src, rollout, 8*time.Minute); r.Verdict != canary.VerdictSuccessful {
		t.Fatalf("at 8m: %s (%s), want Successful", r.Verdict, r.Reason)
	}
	gate.Judge.Mode = canary.JudgeScreen
	if r := evalAt(t, gate, src, rollout, 3*time.Minute); r.Verdict != canary.VerdictSuccessful {
		t.Fatalf("screen at 3m: %s (%s), want Successful: watch holds confirm only", r.Verdict, r.Reason)
	}
}
