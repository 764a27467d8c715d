package promreplay

import (
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/sim"
)

func TestNarrowAddsTheRunToEverySelector(t *testing.T) {
	got, err := narrow(`histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{version="canary"}[5m])))
		/ on() max(up)`, RunLabel, "a/1")
	if err != nil {
		t.Fatal(err)
	}
	want := `histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{sim_run="a/1",version="canary"}[5m]))) / on () max(up{sim_run="a/1"})`
	if got != want {
		t.Errorf("narrow:\n got %s\nwant %s", got, want)
	}
	if _, err := narrow("sum(", RunLabel, "x"); err == nil {
		t.Error("narrow accepted invalid PromQL")
	}
}

func TestMetricNamesWriteThePresetsStatusCounters(t *testing.T) {
	for preset, want := range map[string]sim.StatusCounter{
		canary.PresetVLLM:   {Name: "http_requests_total", Label: "status", Error: "5xx", OK: "2xx"},
		canary.PresetKServe: {Name: "revision_app_request_count", Label: "response_code_class", Error: "5xx", OK: "2xx"},
	} {
		names, metrics := metricNames(&canary.SignalsSpec{Preset: preset})
		if names.Status != want || names.Errors != ErrorsMetric {
			t.Errorf("%s: status %+v, errors %q; want %+v and %s", preset, names.Status, names.Errors, want, ErrorsMetric)
		}
		if metrics["errors"] != "" {
			t.Errorf("%s: the gates read errors from %q, want the preset's own selector", preset, metrics["errors"])
		}
	}
	names, metrics := metricNames(&canary.SignalsSpec{Preset: canary.PresetKServe, Metrics: map[string]string{"errors": "my_errors_total"}})
	if names.Status.Name != "" || names.Errors != "my_errors_total" || metrics["errors"] != "my_errors_total" {
		t.Errorf("a named error counter: status %+v, errors %q, read %q", names.Status, names.Errors, metrics["errors"])
	}
}

// The replay writes feedback counters under plain names only, and says so
// for a selector instead of failing on it while writing.
func TestFeedbackNames(t *testing.T) {
	for _, tc := range []struct {
		metrics map[string]string
		wantErr string
	}{
		{nil, ""},
		{map[string]string{"feedback": "labels_total", "feedbackCorrect": "labels_correct_total"}, ""},
		{map[string]string{"feedbackCorrect": `labels_total{verdict="correct"}`}, "signals.metrics.feedbackCorrect"},
		{map[string]string{"feedback": "a_total|b_total"}, "signals.metrics.feedback"},
		{map[string]string{"feedback": "1bad"}, "not a selector"},
	} {
		err := feedbackNames(&canary.SignalsSpec{Preset: canary.PresetKServe, Metrics: tc.metrics})
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%v: err %v, want %q", tc.metrics, err, tc.wantErr)
		}
	}
}

func TestAssumePassingPassesPromQLGatesWhenDue(t *testing.T) {
	count, interval := 3, canary.Duration{Duration: time.Minute}
	gate := canary.GateSpec{Name: "slo", Type: canary.GateThreshold,
		Threshold: &canary.ThresholdGate{Query: "up", SuccessCondition: "result < 1", Count: &count, Interval: &interval}}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := assumePassing{}
	for _, tc := range []struct {
		after time.Duration
		want  canary.Verdict
	}{{2 * time.Minute, canary.VerdictRunning}, {3 * time.Minute, canary.VerdictSuccessful}} {
		res, err := a.Evaluate(t.Context(), gate, canary.Window{Start: start, Now: start.Add(tc.after)})
		if err != nil || res.Verdict != tc.want {
			t.Errorf("after %s: %v, %v; want %s", tc.after, res.Verdict, err, tc.want)
		}
	}
}
