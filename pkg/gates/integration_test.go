package gates_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/promserver"
)

// metricsTarget serves a registry whose values are set once: 100 requests
// with code 200 and 5 with code 500, and 100 latencies of 50ms plus 10 of
// 2s, so that the error ratio is 5/105 and the p99 latency 2.335s.
func metricsTarget(t *testing.T) string {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "canarybot_it_requests_total", Help: "Requests by status code.",
	}, []string{"code"})
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "canarybot_it_latency_seconds", Help: "Request latency.", Buckets: []float64{0.1, 0.5, 1, 2.5},
	})
	reg.MustRegister(requests, latency)
	requests.WithLabelValues("200").Add(100)
	requests.WithLabelValues("500").Add(5)
	for range 100 {
		latency.Observe(0.05)
	}
	for range 10 {
		latency.Observe(2)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// startPrometheus starts the real prometheus binary scraping target every
// 500ms and waits for its first samples. It fails the test, with install
// instructions, when the binary is missing.
func startPrometheus(t *testing.T, target string, logger *slog.Logger) *promserver.Server {
	t.Helper()
	srv, err := promserver.Start(t.Context(), promserver.Options{
		ScrapeInterval: 500 * time.Millisecond,
		Targets:        []promserver.Target{{Addr: target, Labels: map[string]string{"track": "canary"}}},
		Logger:         logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop prometheus: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := srv.WaitForSamples(ctx, `canarybot_it_latency_seconds_count{track="canary"}`); err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestThresholdAgainstRealPrometheus runs the Threshold evaluator through
// client_golang against the real prometheus binary scraping a real
// /metrics endpoint.
func TestThresholdAgainstRealPrometheus(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := startPrometheus(t, metricsTarget(t), logger)
	// Samples exist now, so every instant after start has data. Wait for
	// the whole window, plus a scrape, before assessing it.
	start := time.Now().Truncate(time.Second)
	end := start.Add(3 * time.Second)
	time.Sleep(time.Until(end.Add(time.Second)))

	prom, err := gates.NewPrometheus(srv.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := gates.NewThreshold(prom, logger)
	gate := func(th canary.ThresholdGate) canary.GateSpec {
		th.Interval, th.Count = canary.D(time.Second), ptr(3)
		return canary.GateSpec{Name: "it", Type: canary.GateThreshold, Threshold: &th}
	}
	full := canary.Window{Start: start, Now: end}
	tests := []struct {
		name    string
		gate    canary.GateSpec
		w       canary.Window
		verdict canary.Verdict
		values  []string
		reason  string
	}{
		{"measured at each instant", gate(canary.ThresholdGate{
			Query: fmt.Sprintf("time() - %d", start.Unix()), SuccessCondition: "result > 0"}),
			full, canary.VerdictSuccessful, []string{"1", "2", "3"}, "3 of 3 measurements successful"},
		{"error ratio passes", gate(canary.ThresholdGate{
			Query:            `sum(canarybot_it_requests_total{code="500", track="canary"}) / sum(canarybot_it_requests_total{track="canary"})`,
			FailureCondition: "result > 0.1"}),
			full, canary.VerdictSuccessful, []string{"0.047619", "0.047619", "0.047619"}, "did not meet failureCondition: result > 0.1"},
		{"p99 latency fails", gate(canary.ThresholdGate{
			Query:            `histogram_quantile(0.99, sum by (le) (canarybot_it_latency_seconds_bucket{track="canary"}))`,
			SuccessCondition: "result < 0.5"}),
			full, canary.VerdictFailed, []string{"2.335"}, "1 of 1 measurements failed (limit 0): result 2.335 did not meet successCondition: result < 0.5"},
		{"no data is inconclusive", gate(canary.ThresholdGate{
			Query: `sum(canarybot_it_requests_total{code="503"})`, SuccessCondition: "result < 1"}),
			full, canary.VerdictInconclusive, []string{""}, "query returned no data"},
		{"several series are an error", gate(canary.ThresholdGate{
			Query: `canarybot_it_requests_total`, SuccessCondition: "result < 1", ConsecutiveErrorLimit: ptr(0)}),
			full, canary.VerdictError, []string{""}, "query returned 2 series"},
		{"mid-window is running", gate(canary.ThresholdGate{
			Query: `sum(canarybot_it_requests_total{code="500"})`, SuccessCondition: "result <= 5"}),
			canary.Window{Start: start, Now: start.Add(1500 * time.Millisecond)}, canary.VerdictRunning, []string{"5"}, "next measurement at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ev.Evaluate(t.Context(), tt.gate, tt.w)
			if err != nil {
				t.Fatal(err)
			}
			var values []string
			for _, m := range res.Measurements {
				values = append(values, m.Value)
			}
			if res.Verdict != tt.verdict || !reflect.DeepEqual(values, tt.values) || !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("verdict %s, values %q, reason %q; want %s, %q, containing %q", res.Verdict, values, res.Reason, tt.verdict, tt.values, tt.reason)
			}
			again, err := ev.Evaluate(t.Context(), tt.gate, tt.w)
			if err != nil || !reflect.DeepEqual(again, res) {
				t.Errorf("re-evaluating the window differs: %+v, %v; first %+v", again, err, res)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
