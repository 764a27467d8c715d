package sim

import (
	"bytes"
	"strings"
	"testing"
)

// gpuScenario's canary GPU raises Xid 79 twice and Xid 48 once; stable's
// never.
const gpuScenario = `
name: gpu
traffic: {rps: 20, maxDuration: 10m}
stable: {latency: {medianSeconds: 0.3, sigma: 0.5}, gpu: {memoryUsedFraction: 0.5, temperatureC: 60}}
canary: {gpu: {memoryUsedFraction: 0.5, memoryGrowthPerMinute: 0.6, temperatureC: 70}}
changes:
- {at: 5s, target: canary, set: {gpu: {xid: [79]}}}
- {at: 8s, target: canary, set: {gpu: {xid: [79, 48]}}}
expect: revert
`

// The GPU families are the gpu-agent's: one GPU per run and side, the
// side's pod on it, Xid counters born at their first event.
func TestWriteOpenMetricsGPU(t *testing.T) {
	w, _ := startedWorld(t, mustScenario(t, gpuScenario), 1, 10, 20, 50)
	labels := [2]map[string]string{{"role": "stable"}, {"role": "canary"}}
	var buf bytes.Buffer
	if err := WriteOpenMetrics(&buf, MetricNames{Requests: "requests_total", GPU: true}, ExportRun{World: w, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	series := parseOpenMetrics(t, buf.String())
	const st, ca = `{role="stable",uuid="GPU-sim-0-0",gpu="0"`, `{role="canary",uuid="GPU-sim-0-1",gpu="0"`
	for key, want := range map[string]int{
		"canarybot_gpu_memory_used_bytes" + st + "}":                                                         30,
		"canarybot_gpu_memory_total_bytes" + ca + "}":                                                        20,
		"canarybot_gpu_temperature_celsius" + ca + "}":                                                       20,
		"canarybot_gpu_process_memory_used_bytes" + st + `,pid="1000",pod="model-stable-0",namespace="sim"}`: 30,
		"canarybot_gpu_process_memory_used_bytes" + ca + `,pid="1001",pod="model-canary-0",namespace="sim"}`: 20,
	} {
		if got := len(series[key]); got != want {
			t.Errorf("%s: %d samples, want %d", key, got, want)
		}
	}
	mem := series["canarybot_gpu_memory_used_bytes"+ca+"}"]
	if first, last := mem[0].value, mem[len(mem)-1].value; first < 0.5*simGPUBytes || last <= first || last > 0.71*simGPUBytes {
		t.Errorf("canary memory %v → %v bytes, want from half of %d rising 1%%/s", first, last, simGPUBytes)
	}
	if temp := series["canarybot_gpu_temperature_celsius"+ca+"}"]; temp[0].value != 70 {
		t.Errorf("canary temperature %v, want 70", temp[0].value)
	}
	x79, x48 := series["canarybot_gpu_xid_errors_total"+ca+`,xid="79"}`], series["canarybot_gpu_xid_errors_total"+ca+`,xid="48"}`]
	if len(x79) == 0 || len(x48) == 0 || x79[0].value != 1 || x79[len(x79)-1].value != 2 || x48[len(x48)-1].value != 1 {
		t.Errorf("canary Xid counters: 79 %v, 48 %v; want 79 born at 1 ending at 2, 48 at 1", x79, x48)
	}
	if len(x79) <= len(x48) {
		t.Errorf("Xid 79 (first at 5s) has %d samples, 48 (first at 8s) %d: each counter starts at its first event", len(x79), len(x48))
	}
	for key := range series {
		if strings.Contains(key, "xid") && strings.Contains(key, `role="stable"`) {
			t.Errorf("stable raised no Xid, yet %s was written", key)
		}
	}
}
