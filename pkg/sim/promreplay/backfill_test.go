package promreplay

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/signals"
	"github.com/canarybot/canarybot/pkg/sim"
)

// backfillScenario has every signal PromSignals reads on both sides, and
// a 90s metrics outage from 2m after the canary's first traffic.
const backfillScenario = `
name: backfill
traffic: {rps: 30, maxDuration: 10m}
stable:
  errorRate: 0.01
  latency: {medianSeconds: 0.3, sigma: 0.5}
  ttft: {medianSeconds: 0.05, sigma: 0.4}
  kvCacheUsage: 0.4
  queueDepth: 2
  predictions: {classes: [0.7, 0.3]}
canary:
  errorRate: 0.03
  latency: {medianSeconds: 0.4, sigma: 0.5}
  kvCacheUsage: 0.5
  kvCacheGrowthPerMinute: 0.06
changes:
- {at: 2m, for: 90s, target: metrics, set: {available: false}}
expect: revert
`

// TestBackfilledPrometheusServesTheWorld writes a world, backfills it with
// the real promtool and serves it with the real Prometheus. A counter
// queried at a known time is the world's value, and PromSignals reads the
// same intervals from Prometheus as the gates read from memory, except at
// the edges of the outage.
func TestBackfilledPrometheusServesTheWorld(t *testing.T) {
	sc, err := sim.ParseScenario([]byte(backfillScenario))
	if err != nil {
		t.Fatal(err)
	}
	w, err := sim.NewWorld(sc, 7, sim.Epoch())
	if err != nil {
		t.Fatal(err)
	}
	advance := func(n int) {
		if err := w.Advance(n); err != nil {
			t.Fatal(err)
		}
	}
	advance(600)
	w.SetWeight(30)
	advance(360)
	spec := &canary.SignalsSpec{Preset: canary.PresetVLLM, Stable: map[string]string{"role": "stable"},
		Canary: map[string]string{"role": "canary"}}
	names, metrics := metricNames(spec)
	ex := sim.ExportRun{World: w, Labels: [2]map[string]string{
		withLabel(spec.Stable, RunLabel, "x"), withLabel(spec.Canary, RunLabel, "x")}}
	prom, stop, err := serve(t.Context(), Options{}, t.TempDir(), names, []sim.ExportRun{ex}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })

	// The canary's requests by 11m from the epoch: 0 before its first
	// traffic, at 600s, plus what it served in (600s, 660s].
	at := sim.Epoch().Add(11 * time.Minute)
	mem, err := w.Read(t.Context(), sim.Epoch().Add(10*time.Minute), at, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := 0.0
	for _, iv := range mem.Intervals {
		want += iv.Requests[signals.Canary]
	}
	v, _, _, err := prom.Query(t.Context(), `vllm:e2e_request_latency_seconds_count{role="canary",sim_run="x"}`, at)
	if err != nil {
		t.Fatal(err)
	}
	if vec, ok := v.(model.Vector); !ok || len(vec) != 1 || float64(vec[0].Value) != want || want < 300 {
		t.Errorf("canary request count at %s = %v, want %v (more than 300)", at.Format(time.TimeOnly), v, want)
	}

	src := &gates.PromSignals{API: prom, Spec: runSpec(spec, metrics, "x")}
	start, end := sim.Epoch().Add(5*time.Minute), w.Now()
	fromProm, err := src.Read(t.Context(), start, end, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fromMem, err := w.Read(t.Context(), start, end, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	compareSeries(t, fromMem, fromProm)
}

// compareSeries checks that p holds exactly m's intervals, bounds,
// requests, errors, histograms and KV cache gauge, except where m is
// NoData: there p may extrapolate at the outage's edges, but must be
// NoData where the outage covers the whole interval and its end.
func compareSeries(t *testing.T, m, p *signals.Series) {
	t.Helper()
	if len(m.Intervals) != len(p.Intervals) {
		t.Fatalf("prometheus read %d intervals, memory %d", len(p.Intervals), len(m.Intervals))
	}
	if !slices.Equal(m.LatencyBounds, p.LatencyBounds) || !slices.Equal(m.TTFTBounds, p.TTFTBounds) {
		t.Errorf("bounds: prometheus %v %v, memory %v %v", p.LatencyBounds, p.TTFTBounds, m.LatencyBounds, m.TTFTBounds)
	}
	noData := 0
	for i := range m.Intervals {
		mi, pi := &m.Intervals[i], &p.Intervals[i]
		if !mi.End.Equal(pi.End) {
			t.Fatalf("interval %d ends at %s in prometheus, %s in memory", i, pi.End, mi.End)
		}
		if mi.NoData {
			noData++
			if mi.NoData && i > 0 && m.Intervals[i-1].NoData && i+1 < len(m.Intervals) && m.Intervals[i+1].NoData && !pi.NoData {
				t.Errorf("%s: prometheus has data inside the outage", pi.End.Format(time.TimeOnly))
			}
			continue
		}
		for side := range 2 {
			got := fmt.Sprint(pi.Requests[side], pi.Errors[side], pi.Latency[side], pi.TTFT[side], gauge(pi.KVCache[side]), gauge(pi.QueueDepth[side]))
			want := fmt.Sprint(mi.Requests[side], mi.Errors[side], mi.Latency[side], mi.TTFT[side], gauge(mi.KVCache[side]), gauge(mi.QueueDepth[side]))
			if got != want && !(mi.Latency[side] == nil && allZero(pi)) {
				t.Errorf("%s %s: prometheus %s, memory %s", pi.End.Format(time.TimeOnly), signals.Side(side), got, want)
			}
		}
	}
	if noData < 8 {
		t.Errorf("only %d NoData intervals in memory; the outage should cover 9 or 10", noData)
	}
}

func gauge(v float64) string {
	if math.IsNaN(v) {
		return "none"
	}
	return fmt.Sprint(v)
}

// allZero reports an interval before the canary's traffic, where
// PromSignals reads zero counts for the canary where memory reads none.
func allZero(iv *signals.Interval) bool {
	return iv.Requests[signals.Canary] == 0 && signals.Sum(iv.Latency[signals.Canary]) == 0
}
