package gates

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/canarybot/canarybot/pkg/canary"
)

// fakeQuerier is a Querier whose behavior each test sets with QueryFn. It
// records the instants it was asked about.
type fakeQuerier struct {
	QueryFn func(ctx context.Context, query string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error)

	mu  sync.Mutex
	ats []time.Time
}

func (f *fakeQuerier) Query(ctx context.Context, query string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	f.mu.Lock()
	f.ats = append(f.ats, ts)
	f.mu.Unlock()
	return f.QueryFn(ctx, query, ts, opts...)
}

// values answers the i-th query with vals[i] (the last one repeats); a
// nil entry is a transport error.
func values(vals ...*float64) *fakeQuerier {
	f := &fakeQuerier{}
	f.QueryFn = func(_ context.Context, _ string, _ time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
		i := min(len(f.ats), len(vals)) - 1
		if vals[i] == nil {
			return nil, nil, nil, errors.New("connection refused")
		}
		return &model.Scalar{Value: model.SampleValue(*vals[i])}, nil, nil, nil
	}
	return f
}

func f64(x float64) *float64 { return &x }

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func gate(th canary.ThresholdGate) canary.GateSpec {
	return canary.GateSpec{Name: "error-rate", Type: canary.GateThreshold, Threshold: &th}
}

func ptr[T any](v T) *T { return &v }

func instants(start time.Time, d ...time.Duration) []time.Time {
	var out []time.Time
	for _, x := range d {
		out = append(out, start.Add(x))
	}
	return out
}

func measurementTimes(ms []canary.Measurement) []time.Time {
	var out []time.Time
	for _, m := range ms {
		out = append(out, m.At)
	}
	return out
}

func sameTimes(t *testing.T, what string, got, want []time.Time) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
	for i := range got {
		if !got[i].Equal(want[i]) {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
	}
}

func TestThresholdMeasurementInstants(t *testing.T) {
	th := canary.ThresholdGate{
		Query: "sum(rate(errors[1m]))", SuccessCondition: "result < 1",
		InitialDelay: canary.D(30 * time.Second), Interval: canary.D(time.Minute), Count: ptr(3),
	}
	m := time.Minute
	tests := []struct {
		name     string
		now      time.Duration
		want     []time.Time
		verdict  canary.Verdict
		nextAt   time.Time
		reasonIn string
	}{
		{"before the first instant", 80 * time.Second, nil, canary.VerdictRunning, t0.Add(90 * time.Second), "no measurement taken yet; next measurement at 2025-06-01T12:01:30Z"},
		{"exactly at the first instant", 90 * time.Second, instants(t0, 90*time.Second), canary.VerdictRunning, t0.Add(150 * time.Second), "1 of 3 measurements counted"},
		{"mid-window", 2*m + 40*time.Second, instants(t0, 90*time.Second, 150*time.Second), canary.VerdictRunning, t0.Add(210 * time.Second), "2 of 3 measurements counted"},
		{"window complete", 3*m + 30*time.Second, instants(t0, 90*time.Second, 150*time.Second, 210*time.Second), canary.VerdictSuccessful, time.Time{}, "3 of 3 measurements successful, count 3 reached"},
		{"long past the window stops at count", 2 * time.Hour, instants(t0, 90*time.Second, 150*time.Second, 210*time.Second), canary.VerdictSuccessful, time.Time{}, "count 3 reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := values(f64(0.5))
			res, err := NewThreshold(q, nil).Evaluate(t.Context(), gate(th), canary.Window{Start: t0, Now: t0.Add(tt.now)})
			if err != nil {
				t.Fatal(err)
			}
			sameTimes(t, "queried instants", q.ats, tt.want)
			sameTimes(t, "measurement instants", measurementTimes(res.Measurements), tt.want)
			if res.Verdict != tt.verdict || !res.NextAt.Equal(tt.nextAt) || !strings.Contains(res.Reason, tt.reasonIn) {
				t.Errorf("got verdict %s nextAt %v reason %q; want %s %v containing %q", res.Verdict, res.NextAt, res.Reason, tt.verdict, tt.nextAt, tt.reasonIn)
			}
			if res.Successful != len(tt.want) || res.Gate != "error-rate" || res.Query != th.Query || res.Condition != "successCondition: result < 1" {
				t.Errorf("result = %+v", res)
			}
		})
	}
}

func TestThresholdDefaults(t *testing.T) {
	q := values(f64(0.5))
	th := canary.ThresholdGate{Query: "q", FailureCondition: "result > 1"}
	res, err := NewThreshold(q, nil).Evaluate(t.Context(), gate(th), canary.Window{Start: t0, Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	m := time.Minute
	sameTimes(t, "queried instants", q.ats, instants(t0, m, 2*m, 3*m, 4*m, 5*m))
	if res.Verdict != canary.VerdictSuccessful || res.Successful != DefaultCount || res.Value != "0.5" {
		t.Errorf("result = %+v", res)
	}
}

func TestThresholdLimits(t *testing.T) {
	ok, bad := f64(0.5), f64(1.5)
	tests := []struct {
		name    string
		th      canary.ThresholdGate
		q       *fakeQuerier
		verdict canary.Verdict
		taken   int
		counts  [4]int // successful, failed, inconclusive, errors
		reason  string
	}{
		{"first failure fails with limit 0", canary.ThresholdGate{Count: ptr(5)}, values(ok, bad), canary.VerdictFailed, 2, [4]int{1, 1, 0, 0},
			"1 of 2 measurements failed (limit 0): result 1.5 did not meet successCondition: result < 1"},
		{"failure within limit 1 then success", canary.ThresholdGate{Count: ptr(3), FailureLimit: ptr(1)}, values(bad, ok), canary.VerdictSuccessful, 3, [4]int{2, 1, 0, 0},
			"2 of 3 measurements successful, count 3 reached; 1 failed (limit 1)"},
		{"second failure over limit 1 stops early", canary.ThresholdGate{Count: ptr(5), FailureLimit: ptr(1)}, values(ok, bad, ok, bad, ok), canary.VerdictFailed, 4, [4]int{2, 2, 0, 0},
			"2 of 4 measurements failed (limit 1): result 1.5"},
		{"errors extend the schedule past count", canary.ThresholdGate{Count: ptr(2)}, values(nil, nil, ok), canary.VerdictSuccessful, 4, [4]int{2, 0, 0, 2},
			"2 errored"},
		{"consecutive errors over limit", canary.ThresholdGate{Count: ptr(5), ConsecutiveErrorLimit: ptr(1)}, values(ok, nil), canary.VerdictError, 3, [4]int{1, 0, 0, 2},
			"2 consecutive measurement errors (limit 1): query: connection refused"},
		{"default consecutive error limit is 4", canary.ThresholdGate{Count: ptr(5)}, values(nil), canary.VerdictError, 5, [4]int{0, 0, 0, 5},
			"5 consecutive measurement errors (limit 4)"},
		{"NaN is inconclusive", canary.ThresholdGate{Count: ptr(5), InconclusiveLimit: ptr(1)}, values(f64(math.NaN())), canary.VerdictInconclusive, 2, [4]int{0, 0, 2, 0},
			"2 of 2 measurements inconclusive (limit 1): result NaN is not a finite number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := tt.th
			th.Query, th.SuccessCondition, th.Interval = "q", "result < 1", canary.D(time.Minute)
			res, err := NewThreshold(tt.q, nil).Evaluate(t.Context(), gate(th), canary.Window{Start: t0, Now: t0.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			got := [4]int{res.Successful, res.Failed, res.Inconclusive, res.Errors}
			if res.Verdict != tt.verdict || len(tt.q.ats) != tt.taken || len(res.Measurements) != tt.taken || got != tt.counts {
				t.Errorf("verdict %s, %d queries, %d measurements, counts %v; want %s, %d, counts %v",
					res.Verdict, len(tt.q.ats), len(res.Measurements), got, tt.verdict, tt.taken, tt.counts)
			}
			if !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", res.Reason, tt.reason)
			}
			if !res.NextAt.IsZero() {
				t.Errorf("NextAt = %v on a final verdict", res.NextAt)
			}
		})
	}
}

func TestThresholdErrorIsAMeasurement(t *testing.T) {
	q := values(nil, f64(0.25))
	th := canary.ThresholdGate{Query: "q", SuccessCondition: "result < 1", Count: ptr(3)}
	res, err := NewThreshold(q, nil).Evaluate(t.Context(), gate(th), canary.Window{Start: t0, Now: t0.Add(2 * time.Minute)})
	if err != nil {
		t.Fatalf("a transport error must not be returned: %v", err)
	}
	want := []canary.Measurement{
		{At: t0.Add(time.Minute), Verdict: canary.VerdictError, Message: "query: connection refused"},
		{At: t0.Add(2 * time.Minute), Verdict: canary.VerdictSuccessful, Value: "0.25", Message: "result 0.25 met successCondition: result < 1"},
	}
	if !reflect.DeepEqual(res.Measurements, want) {
		t.Errorf("measurements = %+v, want %+v", res.Measurements, want)
	}
	if res.Verdict != canary.VerdictRunning || res.Errors != 1 || res.Value != "0.25" || !res.NextAt.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("result = %+v", res)
	}
}

func TestThresholdNoDataAndSeveralSeries(t *testing.T) {
	tests := []struct {
		name    string
		v       model.Value
		verdict canary.Verdict
		reason  string
	}{
		{"no data", model.Vector{}, canary.VerdictInconclusive, "1 of 1 measurements inconclusive (limit 0): query returned no data"},
		{"several series", model.Vector{{Metric: model.Metric{"pod": "a"}}, {Metric: model.Metric{"pod": "b"}}}, canary.VerdictError, "query returned 2 series"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &fakeQuerier{QueryFn: func(context.Context, string, time.Time, ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
				return tt.v, nil, nil, nil
			}}
			th := canary.ThresholdGate{Query: "q", SuccessCondition: "result < 1", ConsecutiveErrorLimit: ptr(0)}
			res, err := NewThreshold(q, nil).Evaluate(t.Context(), gate(th), canary.Window{Start: t0, Now: t0.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tt.verdict || len(res.Measurements) != 1 || !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("verdict %s, %d measurements, reason %q; want %s, 1, containing %q", res.Verdict, len(res.Measurements), res.Reason, tt.verdict, tt.reason)
			}
		})
	}
}
