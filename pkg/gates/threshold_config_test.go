package gates

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestThresholdConfigErrorsAreTerminal(t *testing.T) {
	valid := canary.ThresholdGate{Query: "q", SuccessCondition: "result < 1"}
	with := func(f func(*canary.ThresholdGate)) *canary.ThresholdGate {
		g := valid
		f(&g)
		return &g
	}
	tests := []struct {
		name   string
		th     *canary.ThresholdGate
		window canary.Window
		want   []string
	}{
		{"no threshold config", nil, canary.Window{Start: t0, Now: t0}, []string{"gate g: threshold configuration is missing"}},
		{"empty query", with(func(g *canary.ThresholdGate) { g.Query = " " }), canary.Window{Start: t0}, []string{"threshold query is empty"}},
		{"no condition", with(func(g *canary.ThresholdGate) { g.SuccessCondition = "" }), canary.Window{Start: t0}, []string{"no condition"}},
		{"bad condition", with(func(g *canary.ThresholdGate) { g.FailureCondition = "result >" }), canary.Window{Start: t0}, []string{"failureCondition: compile condition \"result >\""}},
		{"zero interval", with(func(g *canary.ThresholdGate) { g.Interval = canary.D(0) }), canary.Window{Start: t0}, []string{"interval must be positive"}},
		{"negative delay", with(func(g *canary.ThresholdGate) { g.InitialDelay = canary.D(-time.Second) }), canary.Window{Start: t0}, []string{"initialDelay must not be negative"}},
		{"zero count", with(func(g *canary.ThresholdGate) { g.Count = ptr(0) }), canary.Window{Start: t0}, []string{"count must be at least 1"}},
		{"negative limits", with(func(g *canary.ThresholdGate) { g.FailureLimit, g.ConsecutiveErrorLimit = ptr(-1), ptr(-2) }), canary.Window{Start: t0},
			[]string{"failureLimit must not be negative, got -1", "consecutiveErrorLimit must not be negative, got -2"}},
		{"all errors at once", &canary.ThresholdGate{SuccessCondition: "x"}, canary.Window{Start: t0}, []string{"query is empty", "unknown name x"}},
		{"no window start", &valid, canary.Window{Now: t0}, []string{"analysis window has no start"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := values(f64(0))
			g := canary.GateSpec{Name: "g", Type: canary.GateThreshold, Threshold: tt.th}
			_, err := NewThreshold(q, nil).Evaluate(t.Context(), g, tt.window)
			if err == nil || !canary.IsTerminal(err) {
				t.Fatalf("Evaluate error = %v, want a terminal error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if len(q.ats) != 0 {
				t.Errorf("queried %d times on a bad configuration", len(q.ats))
			}
		})
	}
}

func TestThresholdCanceledContextIsReturned(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	q := &fakeQuerier{QueryFn: func(ctx context.Context, _ string, _ time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
		cancel()
		return nil, nil, nil, ctx.Err()
	}}
	th := canary.ThresholdGate{Query: "q", SuccessCondition: "result < 1"}
	_, err := NewThreshold(q, nil).Evaluate(ctx, gate(th), canary.Window{Start: t0, Now: t0.Add(time.Hour)})
	if !errors.Is(err, context.Canceled) || canary.IsTerminal(err) {
		t.Fatalf("Evaluate error = %v, want a retryable context.Canceled", err)
	}
	if len(q.ats) != 1 {
		t.Errorf("queried %d times after cancellation, want 1", len(q.ats))
	}
}

func TestThresholdQueryTimeout(t *testing.T) {
	tests := []struct {
		name         string
		opts         []ThresholdOption
		wantDeadline bool
		wantOpts     int
	}{
		{"default timeout", nil, true, 1},
		{"custom timeout", []ThresholdOption{WithQueryTimeout(5 * time.Second)}, true, 1},
		{"no timeout", []ThresholdOption{WithQueryTimeout(0)}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hasDeadline bool
			var nOpts int
			q := &fakeQuerier{QueryFn: func(ctx context.Context, _ string, _ time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
				_, hasDeadline = ctx.Deadline()
				nOpts = len(opts)
				return &model.Scalar{Value: 0}, nil, nil, nil
			}}
			th := canary.ThresholdGate{Query: "q", SuccessCondition: "result < 1", Count: ptr(1)}
			if _, err := NewThreshold(q, nil, tt.opts...).Evaluate(t.Context(), gate(th), canary.Window{Start: t0, Now: t0.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if hasDeadline != tt.wantDeadline || nOpts != tt.wantOpts {
				t.Errorf("deadline %v, %d query options; want %v, %d", hasDeadline, nOpts, tt.wantDeadline, tt.wantOpts)
			}
		})
	}
}

func TestThresholdSettle(t *testing.T) {
	q := values(f64(0.5))
	th := canary.ThresholdGate{Query: "q", SuccessCondition: "result < 1", Interval: canary.D(time.Minute), Count: ptr(3)}
	// t_1 = t0+1m and t_2 = t0+2m are past, but only t_1 has settled.
	w := canary.Window{Start: t0, Now: t0.Add(2*time.Minute + 5*time.Second)}
	res, err := NewThreshold(q, nil, WithSettle(10*time.Second)).Evaluate(t.Context(), gate(th), w)
	if err != nil {
		t.Fatal(err)
	}
	sameTimes(t, "queried instants", q.ats, instants(t0, time.Minute))
	if res.Verdict != canary.VerdictRunning || !res.NextAt.Equal(t0.Add(2*time.Minute+10*time.Second)) {
		t.Errorf("verdict %s nextAt %v; want Running at t_2 + settle", res.Verdict, res.NextAt)
	}
}

func TestThresholdWarningsAreEvidence(t *testing.T) {
	q := &fakeQuerier{QueryFn: func(context.Context, string, time.Time, ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
		return &model.Scalar{Value: 0.1}, v1.Warnings{"partial response"}, nil, nil
	}}
	th := canary.ThresholdGate{Query: "q", SuccessCondition: "result < 1", Count: ptr(1)}
	res, err := NewThreshold(q, nil).Evaluate(t.Context(), gate(th), canary.Window{Start: t0, Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Measurements) != 1 || !strings.Contains(res.Measurements[0].Message, "prometheus warnings: partial response") {
		t.Errorf("measurements = %+v, want the warning in the message", res.Measurements)
	}
}

// TestThresholdIsStateless re-evaluates the same window, as a restarted
// bot would, and a later window: the measurements are a function of the
// window and the data, not of earlier calls.
func TestThresholdIsStateless(t *testing.T) {
	byTime := &fakeQuerier{QueryFn: func(_ context.Context, _ string, ts time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
		return &model.Scalar{Value: model.SampleValue(ts.Sub(t0).Minutes() / 10)}, nil, nil, nil
	}}
	th := canary.ThresholdGate{Query: "q", SuccessCondition: "result < 1", Count: ptr(4)}
	ev := NewThreshold(byTime, nil)
	eval := func(now time.Duration) canary.GateResult {
		t.Helper()
		res, err := ev.Evaluate(t.Context(), gate(th), canary.Window{Start: t0, Now: t0.Add(now)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first, again := eval(150*time.Second), eval(150*time.Second)
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("re-evaluating the same window differs:\n%+v\n%+v", first, again)
	}
	later := eval(time.Hour)
	if later.Verdict != canary.VerdictSuccessful || len(later.Measurements) != 4 ||
		!reflect.DeepEqual(later.Measurements[:2], first.Measurements) || later.Value != "0.4" {
		t.Errorf("later window = %+v, want the first two measurements repeated and four in all", later)
	}
}

func TestThresholdWithoutQuerier(t *testing.T) {
	th := canary.ThresholdGate{Query: "q", SuccessCondition: "result < 1"}
	_, err := NewThreshold(nil, nil).Evaluate(t.Context(), gate(th), canary.Window{Start: t0, Now: t0.Add(time.Hour)})
	if !canary.IsTerminal(err) || !strings.Contains(err.Error(), "no querier") {
		t.Errorf("Evaluate error = %v, want a terminal no-querier error", err)
	}
}
