package canary

import (
	"slices"
	"strings"
	"testing"
)

// gpuPlan is a plan with one gauge gate; gpu is spec.signals.gpu's YAML
// ("" for none) and gauge the gate's gauge.
func gpuPlan(gpu, gauge string) string {
	y := `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: qwen}
spec:
  model: {name: qwen, source: {oci: {repository: ghcr.io/acme/qwen}}}
  traffic: {mode: kserve, kserve: {inferenceService: qwen}}
  overlay: manifests/overlays/qwen
  argocd: {application: qwen}
  signals:
    preset: vllm
    stable: {role: stable}
    canary: {role: canary}
`
	if gpu != "" {
		y += "    gpu: " + gpu + "\n"
	}
	return y + `  steps:
  - setWeight: 10
  - analysis: {gates: [g]}
  gates:
  - name: g
    gauge: ` + gauge + "\n"
}

const gpuPods = `{stable: {pod: "~qwen-stable-.*"}, canary: {pod: "~qwen-canary-.*"}`

func TestGPUGaugeDefaults(t *testing.T) {
	p, err := ParsePlan([]byte(gpuPlan(gpuPods+"}", "{signal: throttle}")))
	if err != nil {
		t.Fatal(err)
	}
	g := p.Spec.Gates[0]
	if g.Signals.GPU == nil || g.Signals.GPU.Preset != GPUPresetCanarybot {
		t.Errorf("gate signals.gpu = %+v, want the plan's with preset canarybot", g.Signals.GPU)
	}
	if *g.Gauge.Max != DefaultThrottleShare || g.Gauge.Window.Duration != DefaultThrottleWindow {
		t.Errorf("throttle defaults: max %v window %v", *g.Gauge.Max, g.Gauge.Window)
	}
	want := []string{"HwSlowdown", "SwThermalSlowdown", "HwThermalSlowdown", "HwPowerBrakeSlowdown"}
	for _, r := range want {
		if !slices.Contains(g.Gauge.Reasons, r) {
			t.Errorf("default reasons %v lack %s", g.Gauge.Reasons, r)
		}
	}
	p, err = ParsePlan([]byte(gpuPlan(gpuPods+"}", "{signal: eccUncorrected}")))
	if err != nil {
		t.Fatal(err)
	}
	if *p.Spec.Gates[0].Gauge.Max != 0 {
		t.Errorf("ECC default max = %v, want 0", *p.Spec.Gates[0].Gauge.Max)
	}
}

func TestGPUGaugeValidation(t *testing.T) {
	for _, tc := range []struct {
		name, gpu, gauge string
		wantErr          []string
	}{
		{"dcgm preset", `{preset: dcgm, stable: {pod: a}, canary: {pod: b}}`, "{signal: xid}", nil},
		{"agents", gpuPods + `, agents: ["http://gpu-node-1:9836"]}`, "{signal: gpuMemory, maxRatePerMinute: 0.01}", nil},
		{"GPU signal without signals.gpu", "", "{signal: gpuMemory}",
			[]string{`spec.gates[0].signals.gpu: is required for signal "gpuMemory"`}},
		{"unknown preset", `{preset: nvsmi, stable: {pod: a}, canary: {pod: b}}`, "{signal: xid}",
			[]string{`spec.gates[0].signals.gpu.preset: unknown GPU preset "nvsmi" (known: canarybot, dcgm)`}},
		{"same pods on both sides", `{stable: {pod: a}, canary: {pod: a}}`, "{signal: xid}",
			[]string{"spec.gates[0].signals.gpu.canary: must select other series than stable"}},
		{"bad regex", `{stable: {pod: "~(a"}, canary: {pod: b}}`, "{signal: xid}",
			[]string{`spec.gates[0].signals.gpu.stable: label matchers: pod: bad regular expression "(a"`}},
		{"metric a preset does not read", `{preset: dcgm, stable: {pod: a}, canary: {pod: b}, metrics: {process: x}}`, "{signal: xid}",
			[]string{`spec.gates[0].signals.gpu.metrics.process: preset dcgm reads no "process" metric`}},
		{"agents need canarybot's preset and URLs", `{preset: dcgm, stable: {pod: a}, canary: {container: b}, agents: ["gpu-node-1:9836"]}`, "{signal: xid}",
			[]string{"spec.gates[0].signals.gpu.agents: gpu-agents are canarybot's", `spec.gates[0].signals.gpu.agents[0]: must be an http(s) URL of a gpu-agent, got "gpu-node-1:9836"`,
				"spec.gates[0].signals.gpu.canary.container: a gpu-agent's processes carry only the labels [pod namespace pod_uid]"}},
		{"throttle reasons", gpuPods + "}", "{signal: throttle, reasons: [HwSlowdown, Overheated], max: 1.5, window: 0s}",
			[]string{`spec.gates[0].gauge.reasons[1]: unknown clock event reason "Overheated"`, "spec.gates[0].gauge.window: must be positive",
				"spec.gates[0].gauge.max: is the share of throttled samples allowed: must be in [0, 1), got 1.5"}},
		{"reasons on another signal", gpuPods + "}", "{signal: xid, reasons: [HwSlowdown]}",
			[]string{"spec.gates[0].gauge: reasons and window apply to the throttle signal only"}},
		{"rate must be positive", gpuPods + "}", "{signal: gpuMemory, maxRatePerMinute: -0.1}",
			[]string{"spec.gates[0].gauge.maxRatePerMinute: must be positive, got -0.1"}},
		{"unknown signal lists the GPU ones", gpuPods + "}", "{signal: power, max: 300}",
			[]string{`unknown signal "power" (known: kvCache, queueDepth, gpuMemory, gpuTemperature, xid, eccUncorrected, throttle)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePlan([]byte(gpuPlan(tc.gpu, tc.gauge)))
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("valid plan refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("plan accepted, want errors %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestMaxAboveStable(t *testing.T) {
	for _, tc := range []struct {
		name, gauge string
		wantMax     *float64
		wantErr     string
	}{
		{"alone: no absolute max", "{signal: gpuTemperature, maxAboveStable: 10}", nil, ""},
		{"queue depth needs a bound", "{signal: queueDepth}", nil, `spec.gates[0].gauge.max: is required for signal "queueDepth" (or maxAboveStable)`},
		{"queue depth against stable", "{signal: queueDepth, maxAboveStable: 5}", nil, ""},
		{"beside a max", "{signal: kvCache, max: 0.97, maxAboveStable: 0.2}", ptr(0.97), ""},
		{"not for counts", "{signal: xid, maxAboveStable: 1}", nil, "spec.gates[0].gauge.maxAboveStable: applies to kvCache, queueDepth, gpuMemory and gpuTemperature, not xid"},
		{"not negative", "{signal: gpuMemory, maxAboveStable: -0.1}", nil, "spec.gates[0].gauge.maxAboveStable: must not be negative, got -0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePlan([]byte(gpuPlan(gpuPods+"}", tc.gauge)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := p.Spec.Gates[0].Gauge.Max
			if (got == nil) != (tc.wantMax == nil) || (got != nil && *got != *tc.wantMax) {
				t.Errorf("max = %v, want %v", got, tc.wantMax)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
