package canary

import (
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/canarybot/canarybot/pkg/gpu/clockevent"
)

// Defaults of GPU gauge gates.
const (
	DefaultThrottleShare  = 0.2
	DefaultThrottleWindow = 5 * time.Minute
)

// GPUSignal reports whether a gauge signal is read from the GPUs.
func GPUSignal(signal string) bool {
	switch signal {
	case SignalGPUMemory, SignalGPUTemp, SignalXid, SignalECC, SignalThrottle:
		return true
	}
	return false
}

// gpuMetricKeys lists the metric names a GPU preset reads, by signal.
func gpuMetricKeys(preset string) []string {
	switch preset {
	case GPUPresetCanarybot:
		return []string{"memoryUsed", "memoryTotal", "temperature", "xid", "eccUncorrected", "throttle", "process"}
	case GPUPresetDCGM:
		return []string{"memoryUsed", "memoryFree", "temperature", "xid", "eccUncorrected", "throttle"}
	}
	return nil
}

// agentLabels are the labels a gpu-agent's process samples carry.
func agentLabels() []string { return []string{"pod", "namespace", "pod_uid"} }

func defaultGPUSignals(s *SignalsSpec) {
	if s != nil && s.GPU != nil && s.GPU.Preset == "" {
		s.GPU.Preset = GPUPresetCanarybot
	}
}

func defaultGPUGauge(g *GaugeGate) {
	if g.Signal != SignalThrottle {
		return
	}
	if len(g.Reasons) == 0 {
		g.Reasons = clockevent.SlowdownNames()
	}
	if g.Window == nil {
		g.Window = D(DefaultThrottleWindow)
	}
}

// validateGPUGauge checks what a GPU gauge gate adds to a gauge gate.
func validateGPUGauge(f string, g *GaugeGate, s *SignalsSpec, add addFunc) {
	if GPUSignal(g.Signal) && s != nil && s.GPU == nil {
		add(f+".signals.gpu", "is required for signal %q: say whose GPU metrics to read (preset canarybot or dcgm) and which pods are stable and canary", g.Signal)
	}
	if r := g.MaxRatePerMinute; r != nil && *r <= 0 {
		add(f+".gauge.maxRatePerMinute", "must be positive, got %g", *r)
	}
	if g.Signal != SignalThrottle {
		if len(g.Reasons) > 0 || g.Window != nil {
			add(f+".gauge", "reasons and window apply to the %s signal only", SignalThrottle)
		}
		return
	}
	for i, r := range g.Reasons {
		if _, ok := clockevent.Bit(r); !ok {
			add(fmt.Sprintf("%s.gauge.reasons[%d]", f, i), "unknown clock event reason %q (known: %v)", r, clockevent.Names(clockevent.All))
		}
	}
	if g.Window.Duration <= 0 {
		add(f+".gauge.window", "must be positive, got %s", g.Window.Duration)
	}
	if m := *g.Max; m < 0 || m >= 1 { // throttle always has a max: maxAboveStable does not apply
		add(f+".gauge.max", "is the share of throttled samples allowed: must be in [0, 1), got %g", m)
	}
}

// validateGPUSignals checks spec.signals.gpu.
func validateGPUSignals(f string, g *GPUSignals, add addFunc) {
	keys := gpuMetricKeys(g.Preset)
	if keys == nil {
		add(f+".preset", "unknown GPU preset %q (known: %s, %s)", g.Preset, GPUPresetCanarybot, GPUPresetDCGM)
	}
	validateMatchers(f, g.Stable, g.Canary, add)
	for k := range g.Metrics {
		if keys != nil && !slices.Contains(keys, k) {
			add(f+".metrics."+k, "preset %s reads no %q metric (known: %v)", g.Preset, k, keys)
		}
	}
	if len(g.Agents) == 0 {
		return
	}
	if g.Preset != GPUPresetCanarybot {
		add(f+".agents", "gpu-agents are canarybot's: agents need preset %s, got %q", GPUPresetCanarybot, g.Preset)
	}
	for i, a := range g.Agents {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(fmt.Sprintf("%s.agents[%d]", f, i), "must be an http(s) URL of a gpu-agent, got %q", a)
		}
	}
	for side, sel := range map[string]map[string]string{"stable": g.Stable, "canary": g.Canary} {
		for k := range sel {
			if !slices.Contains(agentLabels(), k) {
				add(f+"."+side+"."+k, "a gpu-agent's processes carry only the labels %v", agentLabels())
			}
		}
	}
}

// validateMatchers checks a stable and a canary selector.
func validateMatchers(f string, stable, canary map[string]string, add addFunc) {
	if len(stable) == 0 || len(canary) == 0 {
		add(f, "needs label matchers for both stable and canary")
	} else if fmt.Sprint(stable) == fmt.Sprint(canary) {
		add(f+".canary", "must select other series than stable")
	}
	if _, err := CompileMatchers(stable); err != nil {
		add(f+".stable", "%v", err)
	}
	if _, err := CompileMatchers(canary); err != nil {
		add(f+".canary", "%v", err)
	}
}
