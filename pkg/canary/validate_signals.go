package canary

import (
	"fmt"
	"time"
)

// Defaults of signal-based gates.
const (
	DefaultSignalStep        = 10 * time.Second
	DefaultJudgeAlpha        = 0.05
	DefaultJudgeBeta         = 0.01
	DefaultJudgeWarmup       = 2 * time.Minute
	DefaultMinCanaryRequests = 50
	DefaultJudgeExposure     = 0
	DefaultErrorRateFloor    = 0.01
	DefaultDriftPass         = 0.1
	DefaultDriftFail         = 0.2
	DefaultMinPredictions    = 500
)

// presetMetrics lists the judge metrics each preset offers.
func presetMetrics(preset string) []string {
	switch preset {
	case PresetVLLM:
		return []string{MetricErrors, MetricLatency, MetricTTFT, MetricLatencyTail}
	case PresetKServe:
		return []string{MetricErrors, MetricLatency, MetricLatencyTail}
	}
	return nil
}

// presetOffers lists the judge metrics a preset can test: its defaults
// and the opt-in ones.
func presetOffers(preset string) []string {
	if preset == PresetVLLM {
		return append(presetMetrics(preset), MetricTPOT)
	}
	return presetMetrics(preset)
}

// comparableGauge reports whether both sides report signal as a level
// that can be compared: maxAboveStable applies to it.
func comparableGauge(signal string) bool {
	switch signal {
	case SignalKVCache, SignalQueueDepth, SignalGPUMemory, SignalGPUTemp:
		return true
	}
	return false
}

// DefaultMargin is the materially-worse ratio of a judge metric.
func DefaultMargin(metric string) float64 {
	if metric == MetricErrors {
		return 2
	}
	return 1.3
}

// defaultGauge is the bound of a gauge signal when the plan gives none.
func defaultGauge(signal string) (float64, bool) {
	switch signal {
	case SignalKVCache:
		return 0.9, true
	case SignalGPUMemory:
		return 0.95, true
	case SignalGPUTemp:
		return 85, true
	case SignalXid, SignalECC:
		return 0, true
	case SignalThrottle:
		return DefaultThrottleShare, true
	}
	return 0, false
}

func (p *CanaryPlan) defaultSignalGates() {
	s := &p.Spec
	if s.Signals != nil && s.Signals.Step == nil {
		s.Signals.Step = D(DefaultSignalStep)
	}
	defaultGPUSignals(s.Signals)
	for i := range s.Gates {
		g := &s.Gates[i]
		if g.Type == "" {
			switch {
			case g.Judge != nil:
				g.Type = GateJudge
			case g.Drift != nil:
				g.Type = GateDrift
			case g.Gauge != nil:
				g.Type = GateGauge
			case g.GoldenSet != nil:
				g.Type = GateGoldenSet
			}
		}
		if g.GoldenSet != nil {
			defaultGoldenSet(g.GoldenSet)
		}
		if g.Threshold != nil && g.Threshold.Signal != nil {
			if g.Signals == nil {
				g.Signals = s.Signals
			}
			if g.Threshold.Signal.Window == nil {
				g.Threshold.Signal.Window = D(time.Minute)
			}
		}
		if g.Type == GateThreshold || g.Type == GateGoldenSet || g.Type == "" {
			continue
		}
		if g.Signals == nil {
			g.Signals = s.Signals
		} else if g.Signals.Step == nil {
			g.Signals.Step = D(DefaultSignalStep)
		}
		defaultGPUSignals(g.Signals)
		defaultJudge(g)
		if d := g.Drift; d != nil {
			d.Pass = orFloat(d.Pass, DefaultDriftPass)
			d.Fail = orFloat(d.Fail, DefaultDriftFail)
			d.MinPredictions = orInt(d.MinPredictions, DefaultMinPredictions)
		}
		if gg := g.Gauge; gg != nil {
			if v, ok := defaultGauge(gg.Signal); ok && gg.Max == nil && (gg.MaxAboveStable == nil || !comparableGauge(gg.Signal)) {
				gg.Max = &v
			}
			defaultGPUGauge(gg)
		}
	}
}

func defaultJudge(g *GateSpec) {
	j := g.Judge
	if j == nil {
		return
	}
	if len(j.Metrics) == 0 && g.Signals != nil {
		j.Metrics = presetMetrics(g.Signals.Preset)
	}
	if j.Mode == "" {
		j.Mode = JudgeConfirm
	}
	j.Alpha = orFloat(j.Alpha, DefaultJudgeAlpha)
	j.Beta = orFloat(j.Beta, DefaultJudgeBeta)
	if j.Warmup == nil {
		j.Warmup = D(DefaultJudgeWarmup)
	}
	j.MinCanaryRequests = orInt(j.MinCanaryRequests, DefaultMinCanaryRequests)
	if j.Watch == nil {
		j.Watch = D(0)
	}
	j.Exposure = orInt(j.Exposure, DefaultJudgeExposure)
	j.ErrorRateFloor = orFloat(j.ErrorRateFloor, DefaultErrorRateFloor)
	margins := map[string]float64{}
	for _, m := range j.Metrics {
		margins[m] = DefaultMargin(m)
	}
	for m, v := range j.Margins {
		margins[m] = v
	}
	j.Margins = margins
	defaultGuardrails(j.Guardrails)
}

func orFloat(v *float64, def float64) *float64 {
	if v == nil {
		return &def
	}
	return v
}

// validateSignalGate checks a judge, drift or gauge gate.
func validateSignalGate(f string, g GateSpec, add addFunc) {
	n := 0
	for _, set := range []bool{g.Threshold != nil, g.Judge != nil, g.Drift != nil, g.Gauge != nil, g.GoldenSet != nil} {
		if set {
			n++
		}
	}
	want := map[string]bool{GateJudge: g.Judge != nil, GateDrift: g.Drift != nil, GateGauge: g.Gauge != nil}
	if n != 1 || !want[g.Type] {
		add(f, "a %s gate needs exactly its own %s block", g.Type, g.Type)
		return
	}
	validateSignals(f+".signals", g.Signals, add)
	switch {
	case g.Judge != nil:
		validateJudge(f+".judge", g.Judge, g.Signals, add)
	case g.Drift != nil:
		d := g.Drift
		if *d.Pass <= 0 || *d.Fail < *d.Pass {
			add(f+".drift", "needs 0 < pass ≤ fail, got pass %g fail %g", *d.Pass, *d.Fail)
		}
		if *d.MinPredictions < 1 {
			add(f+".drift.minPredictions", "must be at least 1, got %d", *d.MinPredictions)
		}
	case g.Gauge != nil:
		if _, ok := defaultGauge(g.Gauge.Signal); !ok && g.Gauge.Signal != SignalQueueDepth {
			add(f+".gauge.signal", "unknown signal %q (known: %s, %s, %s, %s, %s, %s, %s)", g.Gauge.Signal,
				SignalKVCache, SignalQueueDepth, SignalGPUMemory, SignalGPUTemp, SignalXid, SignalECC, SignalThrottle)
			return
		} else if g.Gauge.Max == nil && g.Gauge.MaxAboveStable == nil {
			add(f+".gauge.max", "is required for signal %q (or maxAboveStable)", g.Gauge.Signal)
			return
		}
		if m := g.Gauge.MaxAboveStable; m != nil {
			if !comparableGauge(g.Gauge.Signal) {
				add(f+".gauge.maxAboveStable", "applies to %s, %s, %s and %s, not %s",
					SignalKVCache, SignalQueueDepth, SignalGPUMemory, SignalGPUTemp, g.Gauge.Signal)
				return
			} else if *m < 0 {
				add(f+".gauge.maxAboveStable", "must not be negative, got %g", *m)
			}
		}
		validateGPUGauge(f, g.Gauge, g.Signals, add)
		if h := g.Gauge.Horizon; h != nil && h.Duration < 0 {
			add(f+".gauge.horizon", "must not be negative, got %s", h.Duration)
		}
	}
}

func validateSignals(f string, s *SignalsSpec, add addFunc) {
	switch {
	case s == nil:
		add(f, "is required: set spec.signals or the gate's own signals")
		return
	case presetMetrics(s.Preset) == nil:
		add(f+".preset", "unknown preset %q (known: %s, %s)", s.Preset, PresetVLLM, PresetKServe)
	}
	validateMatchers(f, s.Stable, s.Canary, add)
	if s.GPU != nil {
		validateGPUSignals(f+".gpu", s.GPU, add)
	}
	if s.Step != nil && s.Step.Duration <= 0 {
		add(f+".step", "must be positive, got %s", s.Step.Duration)
	}
}

func validateJudge(f string, j *JudgeGate, s *SignalsSpec, add addFunc) {
	if j.Mode != JudgeConfirm && j.Mode != JudgeScreen {
		add(f+".mode", "must be %q or %q, got %q", JudgeConfirm, JudgeScreen, j.Mode)
	}
	offered := map[string]bool{}
	if s != nil {
		for _, m := range presetOffers(s.Preset) {
			offered[m] = true
		}
	}
	for i, m := range j.Metrics {
		if !offered[m] {
			add(fmt.Sprintf("%s.metrics[%d]", f, i), "metric %q is not offered by the preset", m)
		}
	}
	for m, v := range j.Margins {
		if v <= 1 {
			add(f+".margins."+m, "must be above 1, got %g", v)
		}
	}
	if *j.Alpha <= 0 || *j.Alpha > 0.5 {
		add(f+".alpha", "must be in (0, 0.5], got %g", *j.Alpha)
	}
	if *j.Beta <= 0 || *j.Beta > 0.5 {
		add(f+".beta", "must be in (0, 0.5], got %g", *j.Beta)
	}
	if *j.MinCanaryRequests < 0 {
		add(f+".minCanaryRequests", "must not be negative, got %d", *j.MinCanaryRequests)
	}
	if *j.Exposure < 0 {
		add(f+".exposure", "must not be negative, got %d", *j.Exposure)
	}
	if fl := *j.ErrorRateFloor; fl < 0 || fl >= 1 {
		add(f+".errorRateFloor", "must be in [0, 1), got %g", fl)
	}
	validateGuardrails(f+".guardrails", j.Guardrails, s, add)
	if j.Warmup.Duration < 0 {
		add(f+".warmup", "must not be negative, got %s", j.Warmup.Duration)
	}
	if j.Watch.Duration < 0 {
		add(f+".watch", "must not be negative, got %s", j.Watch.Duration)
	}
}
