package gates

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// gpuSeries is n 10 s intervals from start; fill sets each one's canary
// GPU fields.
func gpuSeries(start time.Time, n int, fill func(i int, iv *signals.Interval)) *signals.Series {
	s := &signals.Series{Intervals: make([]signals.Interval, n)}
	for i := range s.Intervals {
		iv := &s.Intervals[i]
		iv.Start, iv.End = start.Add(time.Duration(i)*10*time.Second), start.Add(time.Duration(i+1)*10*time.Second)
		iv.GPUMemoryUsed, iv.GPUTempC, iv.ECCUncorrected = signals.NaN2(), signals.NaN2(), signals.NaN2()
		fill(i, iv)
	}
	return s
}

func gpuGauge(t *testing.T, g canary.GaugeGate) *canary.GaugeGate {
	t.Helper()
	p := &canary.CanaryPlan{Spec: canary.PlanSpec{Gates: []canary.GateSpec{{Name: "g", Gauge: &g}}}}
	p.Default()
	return p.Spec.Gates[0].Gauge
}

func TestGPUGaugeGates(t *testing.T) {
	start := epoch
	throttled := func(every int) func(int, *signals.Interval) {
		return func(i int, iv *signals.Interval) {
			iv.Throttle[signals.Canary] = []string{"GpuIdle"}
			if every > 0 && i%every == 0 {
				iv.Throttle[signals.Canary] = []string{"SwPowerCap", "HwThermalSlowdown"}
			}
		}
	}
	for _, tc := range []struct {
		name   string
		gate   canary.GaugeGate
		fill   func(i int, iv *signals.Interval)
		want   canary.Verdict
		reason string
	}{
		{"ECC: no counters yet", canary.GaugeGate{Signal: canary.SignalECC}, func(int, *signals.Interval) {}, canary.VerdictRunning, "no canary ECC counters"},
		{"ECC: none raised", canary.GaugeGate{Signal: canary.SignalECC},
			func(_ int, iv *signals.Interval) { iv.ECCUncorrected[signals.Canary] = 0 }, canary.VerdictSuccessful, "0 uncorrected"},
		{"ECC: one raised fails by default", canary.GaugeGate{Signal: canary.SignalECC},
			func(i int, iv *signals.Interval) { iv.ECCUncorrected[signals.Canary] = b2f(i == 7) }, canary.VerdictFailed, "raised 1 uncorrected ECC errors, the first by 2026-01-01T00:01:20Z"},
		{"ECC: within a set budget", canary.GaugeGate{Signal: canary.SignalECC, Max: ptr(3.0)},
			func(i int, iv *signals.Interval) { iv.ECCUncorrected[signals.Canary] = b2f(i%10 == 3) }, canary.VerdictSuccessful, "3 uncorrected"},
		{"ECC: stable's errors are not the canary's", canary.GaugeGate{Signal: canary.SignalECC},
			func(_ int, iv *signals.Interval) { iv.ECCUncorrected = [2]float64{5, 0} }, canary.VerdictSuccessful, "0 uncorrected"},
		{"throttle: no samples", canary.GaugeGate{Signal: canary.SignalThrottle}, func(int, *signals.Interval) {}, canary.VerdictRunning, "no canary clock event samples"},
		{"throttle: idle is not throttling", canary.GaugeGate{Signal: canary.SignalThrottle}, throttled(0), canary.VerdictSuccessful, "throttled in 0 of 30 samples over the last 5m0s"},
		{"throttle: power cap alone is not a slowdown", canary.GaugeGate{Signal: canary.SignalThrottle, Reasons: []string{"SwPowerCap"}, Max: ptr(0.5)},
			throttled(3), canary.VerdictSuccessful, "throttled in 10 of 30"},
		{"throttle: a third of the window thermally slowed", canary.GaugeGate{Signal: canary.SignalThrottle}, throttled(3), canary.VerdictFailed,
			"throttled in 10 of 30 samples over the last 5m0s (HwThermalSlowdown), above 0.2"},
		{"throttle: only the trailing window counts", canary.GaugeGate{Signal: canary.SignalThrottle, Window: canary.D(time.Minute)},
			func(i int, iv *signals.Interval) {
				iv.Throttle[signals.Canary] = []string{}
				if i < 20 {
					iv.Throttle[signals.Canary] = []string{"HwSlowdown"}
				}
			}, canary.VerdictSuccessful, "throttled in 0 of 6 samples over the last 1m0s"},
		{"memory: creeping faster than the rate", canary.GaugeGate{Signal: canary.SignalGPUMemory, MaxRatePerMinute: ptr(0.01)},
			func(i int, iv *signals.Interval) { iv.GPUMemoryUsed[signals.Canary] = 0.5 + 0.005*float64(i) }, canary.VerdictFailed, "rising 0.03/min, faster than 0.01/min"},
		{"memory: flat and within max", canary.GaugeGate{Signal: canary.SignalGPUMemory, MaxRatePerMinute: ptr(0.01)},
			func(i int, iv *signals.Interval) { iv.GPUMemoryUsed[signals.Canary] = 0.6 + 0.001*math.Sin(float64(i)) }, canary.VerdictSuccessful, "within bounds (gpuMemory ≤ 0.95)"},
		{"temperature: as hot as stable is no regression", canary.GaugeGate{Signal: canary.SignalGPUTemp, MaxAboveStable: ptr(10.0)},
			func(_ int, iv *signals.Interval) { iv.GPUTempC = [2]float64{92, 93} }, canary.VerdictSuccessful, "within bounds (gpuTemperature ≤ stable's + 10)"},
		{"temperature: 15 °C hotter than stable", canary.GaugeGate{Signal: canary.SignalGPUTemp, MaxAboveStable: ptr(10.0)},
			func(i int, iv *signals.Interval) { iv.GPUTempC = [2]float64{65, 65 + b2f(i >= 20)*15} }, canary.VerdictFailed,
			"canary gpuTemperature 80 is 15 above stable's 65 over its last 6 samples, more than 10"},
		{"temperature: a hot minute long ago is forgotten", canary.GaugeGate{Signal: canary.SignalGPUTemp, MaxAboveStable: ptr(10.0)},
			func(i int, iv *signals.Interval) { iv.GPUTempC = [2]float64{65, 65 + b2f(i < 6)*15} }, canary.VerdictSuccessful, "within bounds"},
		{"temperature: too few paired samples to judge", canary.GaugeGate{Signal: canary.SignalGPUTemp, MaxAboveStable: ptr(10.0)},
			func(i int, iv *signals.Interval) {
				iv.GPUTempC[signals.Canary] = 90
				if i >= 28 { // stable reports only its last two samples
					iv.GPUTempC[signals.Stable] = 60
				}
			}, canary.VerdictSuccessful, "within bounds"},
		{"memory: above max", canary.GaugeGate{Signal: canary.SignalGPUMemory},
			func(_ int, iv *signals.Interval) { iv.GPUMemoryUsed[signals.Canary] = 0.97 }, canary.VerdictFailed, "above 0.95"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := gauge(gpuGauge(t, tc.gate), gpuSeries(start, 30, tc.fill), start)
			if r.Verdict != tc.want || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("got %s %q, want %s containing %q", r.Verdict, r.Reason, tc.want, tc.reason)
			}
		})
	}
}

func TestIncrementsCountResetsAndGaps(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		vals     []float64
		baseline bool
		want     []float64
	}{
		// A series born with its first event counts it.
		{[]float64{nan, 1, 1, 3}, false, []float64{nan, 1, 0, 2}},
		// An always-exported counter's first sample is the baseline.
		{[]float64{4, 4, 6, nan, 7}, true, []float64{0, 0, 2, nan, 1}},
		// A drop is a reset: the new value is what was added.
		{[]float64{5, 2, 3}, true, []float64{0, 2, 1}},
	} {
		got := increments(tc.vals, tc.baseline)
		for i := range got {
			if got[i] != tc.want[i] && !(math.IsNaN(got[i]) && math.IsNaN(tc.want[i])) {
				t.Errorf("increments(%v, %v) = %v, want %v", tc.vals, tc.baseline, got, tc.want)
				break
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func TestWithMatchers(t *testing.T) {
	for _, tc := range []struct{ name, suffix, sel, want string }{
		{"vllm:e2e_request_latency_seconds", "_bucket", `{role="canary"}`, `vllm:e2e_request_latency_seconds_bucket{role="canary"}`},
		{`http_requests_total{status="5xx"}`, "", `{role="canary",run="a"}`, `http_requests_total{status="5xx",role="canary",run="a"}`},
		{`http_requests_total{status="5xx"}`, "", "{}", `http_requests_total{status="5xx"}`},
		{"up", "", "", "up"},
		{`m{a="1"}`, "_count", `{b=~"x.*"}`, `m_count{a="1",b=~"x.*"}`},
	} {
		if got := withMatchers(tc.name, tc.suffix, tc.sel); got != tc.want {
			t.Errorf("withMatchers(%q, %q, %q) = %q, want %q", tc.name, tc.suffix, tc.sel, got, tc.want)
		}
	}
}

// Only GPU gauges ask the source for GPU signals: the judge and other
// gauges read a spec without them, which spares Prometheus the GPU queries.
func TestOnlyGPUGaugesReadGPUs(t *testing.T) {
	spec := &canary.SignalsSpec{Preset: canary.PresetVLLM, Stable: map[string]string{"role": "stable"},
		Canary: map[string]string{"role": "canary"}, Step: canary.D(10 * time.Second),
		GPU: &canary.GPUSignals{Preset: canary.GPUPresetCanarybot, Stable: map[string]string{"pod": "a"}, Canary: map[string]string{"pod": "b"}}}
	for _, tc := range []struct {
		gate    canary.GateSpec
		wantGPU bool
	}{
		{canary.GateSpec{Name: "mem", Signals: spec, Gauge: &canary.GaugeGate{Signal: canary.SignalGPUMemory, Max: ptr(0.9)}}, true},
		{canary.GateSpec{Name: "xid", Signals: spec, Gauge: &canary.GaugeGate{Signal: canary.SignalXid, Max: ptr(0.0)}}, true},
		{canary.GateSpec{Name: "kv", Signals: spec, Gauge: &canary.GaugeGate{Signal: canary.SignalKVCache, Max: ptr(0.9)}}, false},
		{canary.GateSpec{Name: "drift", Signals: spec, Drift: &canary.DriftGate{Pass: ptr(0.1), Fail: ptr(0.2), MinPredictions: ptr(10)}}, false},
	} {
		var got *canary.SignalsSpec
		sg := &SignalGates{SourceFor: func(s *canary.SignalsSpec) (signals.Source, error) {
			got = s
			return gpuSource{}, nil
		}}
		if _, err := sg.Evaluate(t.Context(), tc.gate, canary.Window{Start: epoch, Now: epoch.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if (got.GPU != nil) != tc.wantGPU || got.Preset != spec.Preset || got.Canary["role"] != "canary" {
			t.Errorf("gate %s read spec %+v, want GPU %v and the rest as given", tc.gate.Name, got, tc.wantGPU)
		}
	}
	if spec.GPU == nil {
		t.Error("the plan's spec lost its GPU signals")
	}
}

type gpuSource struct{}

func (gpuSource) Read(_ context.Context, start, end time.Time, step time.Duration) (*signals.Series, error) {
	return gpuSeries(start, int(end.Sub(start)/step), func(int, *signals.Interval) {}), nil
}
