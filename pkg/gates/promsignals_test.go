package gates_test

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canarybot/canarybot/internal/modelsim"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/promserver"
	"github.com/canarybot/canarybot/pkg/signals"
)

// Simulated vLLM servers expose real /metrics; the real Prometheus scrapes
// them; PromSignals must read back what they served.
func TestPromSignalsReadsWhatTheServersServed(t *testing.T) {
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	behaviours := map[modelsim.Role]modelsim.Behaviour{
		modelsim.RoleStable: {ErrorRate: 0, LatencyMedian: 50 * time.Millisecond, LatencySigma: 0.3, KVCacheUsage: 0.3,
			PredictionClasses: []float64{1, 0}},
		modelsim.RoleCanary: {ErrorRate: 0.5, LatencyMedian: 600 * time.Millisecond, LatencySigma: 0.3, KVCacheUsage: 0.7,
			PredictionClasses: []float64{0, 1}},
	}
	var targets []promserver.Target
	servers := map[modelsim.Role]*modelsim.Server{}
	for role, b := range behaviours {
		srv, err := modelsim.NewServer(modelsim.ServerConfig{ModelName: "m", Version: "v", Role: role, Behaviour: b, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(ctx, "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		servers[role] = srv
		targets = append(targets, promserver.Target{Addr: strings.TrimPrefix(srv.URL(), "http://")})
	}
	prom, err := promserver.Start(ctx, promserver.Options{ScrapeInterval: 500 * time.Millisecond, Targets: targets, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prom.Stop() })
	// Serve 40 stable and 10 canary requests a second until stopped.
	var served [2]atomic.Int64
	loadCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
				for range 4 {
					servers[modelsim.RoleStable].Simulate()
				}
				servers[modelsim.RoleCanary].Simulate()
				served[0].Add(4)
				served[1].Add(1)
			}
		}
	}()
	if _, err := prom.WaitForSamples(ctx, `vllm:e2e_request_latency_seconds_count{role="canary"}`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(12 * time.Second)
	api, err := gates.NewPrometheusAPI(prom.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	src := &gates.PromSignals{API: api, Spec: &canary.SignalsSpec{Preset: canary.PresetVLLM,
		Stable: map[string]string{"role": "stable"}, Canary: map[string]string{"role": "canary"},
		// errors: the preset's 5xx answers; answered: a guardrail counter.
		Metrics: map[string]string{"predictions": modelsim.MetricPredictions, "answered": `http_requests_total{status="2xx"}`}}}
	end := time.Now().Add(-2 * time.Second).Truncate(2 * time.Second)
	s, err := src.Read(ctx, end.Add(-8*time.Second), end, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Intervals) != 4 || len(s.LatencyBounds) != len(signals.E2EBuckets()) {
		t.Fatalf("%d intervals, %d latency bounds", len(s.Intervals), len(s.LatencyBounds))
	}
	var req, errs [2]float64
	var slow [2]float64
	for _, iv := range s.Intervals {
		if iv.NoData {
			t.Errorf("interval ending %s has no data", iv.End)
		}
		for side := range 2 {
			req[side] += iv.Requests[side]
			errs[side] += iv.Errors[side]
			slow[side] += iv.Latency[side][len(iv.Latency[side])-1] // nothing lasts over 60 s
			if got := signals.Sum(iv.Latency[side]); math.Abs(got-iv.Requests[side]) > 0.5+0.01*got {
				t.Errorf("%s histogram holds %.1f observations for %.1f requests", signals.Side(side), got, iv.Requests[side])
			}
		}
		// A guardrail counter: the 2xx answers, the requests that did not fail.
		if ok := iv.Counters["answered"]; math.Abs(ok[0]+iv.Errors[0]-iv.Requests[0]) > 0.5 || math.Abs(ok[1]+iv.Errors[1]-iv.Requests[1]) > 0.5 {
			t.Errorf("answered %v + errors %v, want requests %v", ok, iv.Errors, iv.Requests)
		}
		if iv.KVCache[signals.Canary] != 0.7 || iv.KVCache[signals.Stable] != 0.3 {
			t.Errorf("kv cache = %v", iv.KVCache)
		}
	}
	// 8 s at 40/s and 10/s, give or take scrape alignment.
	if math.Abs(req[0]-320) > 80 || math.Abs(req[1]-80) > 20 {
		t.Errorf("requests read back: stable %.0f canary %.0f, want about 320 and 80", req[0], req[1])
	}
	if r := errs[1] / req[1]; r < 0.3 || r > 0.7 || errs[0] != 0 {
		t.Errorf("error ratios: canary %.2f (want about 0.5), stable errors %.0f", r, errs[0])
	}
	for _, iv := range s.Intervals {
		// Stable predicts only class 0, the canary only class 1.
		if len(iv.Predictions[0]) < 1 || iv.Predictions[0][0] <= 0 || len(iv.Predictions[1]) < 2 || iv.Predictions[1][1] <= 0 ||
			(len(iv.Predictions[0]) > 1 && iv.Predictions[0][1] != 0) || iv.Predictions[1][0] != 0 {
			t.Errorf("predictions by class: stable %v canary %v", iv.Predictions[0], iv.Predictions[1])
		}
	}
	if slow[0] != 0 || slow[1] != 0 {
		t.Errorf("+Inf bucket should be empty: %v", slow)
	}
	// TPOT: one observation per successful request, read through the preset.
	if len(s.TPOTBounds) != len(signals.TPOTBuckets()) {
		t.Errorf("%d TPOT bounds, want vLLM's %d", len(s.TPOTBounds), len(signals.TPOTBuckets()))
	}
	var tpot [2]float64
	for _, iv := range s.Intervals {
		for side := range 2 {
			tpot[side] += signals.Sum(iv.TPOT[side])
		}
	}
	if succ := req[1] - errs[1]; math.Abs(tpot[1]-succ) > 0.5+0.05*succ || math.Abs(tpot[0]-req[0]) > 0.5+0.05*req[0] {
		t.Errorf("TPOT observations: stable %.0f canary %.0f, want one per successful request (%.0f, %.0f)", tpot[0], tpot[1], req[0], succ)
	}
	p95, ok := gates.SignalValue(s, canary.StatLatencyP95, end.Add(-8*time.Second), end)
	if !ok || p95 < 0.5 || p95 > 2.5 {
		t.Errorf("canary p95 from Prometheus buckets = %.3f (ok %t), want about 0.98", p95, ok)
	}
}
