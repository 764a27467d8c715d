package canary

import (
	"fmt"
	"time"
)

const knownGateTypes = GateThreshold + ", " + GateJudge + ", " + GateDrift + ", " + GateGauge + ", " + GateGoldenSet

func validateGates(gates []GateSpec, add addFunc) map[string]bool {
	names := map[string]bool{}
	for i, g := range gates {
		f := fmt.Sprintf("spec.gates[%d]", i)
		if !validName(g.Name) {
			add(f+".name", "must be a DNS label, got %q", g.Name)
		} else if names[g.Name] {
			add(f+".name", "duplicate gate %q", g.Name)
		}
		names[g.Name] = true
		if g.TemplateRef != nil {
			add(f+".templateRef", "GateTemplate %q was not resolved: plans that use templates are read with their repository's templates", g.TemplateRef.Name)
			continue
		}
		switch g.Type {
		case GateThreshold:
			validateThreshold(f+".threshold", g.Threshold, add)
			if g.Threshold != nil && g.Threshold.Signal != nil {
				validateSignals(f+".signals", g.Signals, add)
			}
		case GateGoldenSet:
			validateGoldenSetGate(f, g, add)
		case GateJudge, GateDrift, GateGauge:
			validateSignalGate(f, g, add)
		case "":
			add(f+".type", "is required (known types: %s)", knownGateTypes)
		default:
			add(f+".type", "unknown gate type %q (known types: %s)", g.Type, knownGateTypes)
		}
	}
	return names
}

func validateThreshold(f string, t *ThresholdGate, add addFunc) {
	if t == nil {
		add(f, "is required for a threshold gate")
		return
	}
	switch {
	case t.Query == "" && t.Signal == nil:
		add(f+".query", "is required (or a signal)")
	case t.Query != "" && t.Signal != nil:
		add(f, "set either query or signal, not both")
	case t.Signal != nil:
		switch t.Signal.Stat {
		case StatLatencyP95, StatTTFTP95, StatErrorRate, StatKVCache, StatQueueDepth:
		default:
			add(f+".signal.stat", "unknown statistic %q (known: %s, %s, %s, %s, %s)", t.Signal.Stat,
				StatLatencyP95, StatTTFTP95, StatErrorRate, StatKVCache, StatQueueDepth)
		}
	}
	if t.SuccessCondition == "" && t.FailureCondition == "" {
		add(f, "needs successCondition, failureCondition or both")
	}
	validateThresholdBounds(f, t, add)
}

// Bounds of a threshold gate's measurements: an interval under a second
// outpaces Prometheus' scrapes and one over a day never ends in practice;
// every evaluation repeats each measurement of the window, so count is
// capped.
const (
	MinGateInterval = time.Second
	MaxGateInterval = 24 * time.Hour
	MaxGateCount    = 10000
)

// validateThresholdBounds checks interval, initialDelay, count and the
// limits: failureLimit and inconclusiveLimit at most count (a limit equal
// to count never trips), consecutiveErrorLimit at most MaxGateCount.
func validateThresholdBounds(f string, t *ThresholdGate, add addFunc) {
	if t.Interval != nil {
		if d := t.Interval.Duration; d < MinGateInterval || d > MaxGateInterval {
			add(f+".interval", "must be between %s and %s, got %s", MinGateInterval, MaxGateInterval, d)
		}
	}
	if t.InitialDelay != nil && t.InitialDelay.Duration < 0 {
		add(f+".initialDelay", "must not be negative, got %s", t.InitialDelay.Duration)
	}
	count := MaxGateCount // a limit above it is wrong whatever the count
	if t.Count != nil {
		switch c := *t.Count; {
		case c < 1:
			add(f+".count", "must be at least 1, got %d", c)
		case c > MaxGateCount:
			add(f+".count", "must be at most %d, got %d", MaxGateCount, c)
		default:
			count = c
		}
	}
	perCount := fmt.Sprintf("count (%d)", count)
	limits := []struct {
		name  string
		v     *int
		max   int
		bound string
	}{
		{"failureLimit", t.FailureLimit, count, perCount},
		{"inconclusiveLimit", t.InconclusiveLimit, count, perCount},
		{"consecutiveErrorLimit", t.ConsecutiveErrorLimit, MaxGateCount, fmt.Sprint(MaxGateCount)},
	}
	for _, l := range limits {
		switch {
		case l.v == nil:
		case *l.v < 0:
			add(f+"."+l.name, "must not be negative, got %d", *l.v)
		case *l.v > l.max:
			add(f+"."+l.name, "must be at most %s, got %d", l.bound, *l.v)
		}
	}
}

func validateSteps(steps []Step, gates map[string]bool, add addFunc) {
	if len(steps) == 0 {
		add("spec.steps", "at least one step is required")
		return
	}
	last, maxWeight := 0, 0
	for i, st := range steps {
		f := fmt.Sprintf("spec.steps[%d]", i)
		n := 0
		if st.SetWeight != nil {
			n++
			w := *st.SetWeight
			switch {
			case w < 0 || w > 100:
				add(f+".setWeight", "must be between 0 and 100, got %d", w)
			case w < last:
				add(f+".setWeight", "must not go below the previous weight %d, got %d", last, w)
			}
			last = w
			maxWeight = max(maxWeight, w)
		}
		if st.Pause != nil {
			n++
			validatePause(f+".pause", st.Pause, add)
		}
		if st.Analysis != nil {
			n++
			if len(st.Analysis.Gates) == 0 {
				add(f+".analysis.gates", "at least one gate is required")
			}
			for j, g := range st.Analysis.Gates {
				if !gates[g] {
					add(fmt.Sprintf("%s.analysis.gates[%d]", f, j), "no gate named %q in spec.gates", g)
				}
			}
		}
		if st.SetHeaderRoute != nil {
			n++
		}
		if st.SetMirrorRoute != nil {
			n++
		}
		if n != 1 {
			add(f, "must set exactly one of setWeight, pause, analysis, setHeaderRoute or setMirrorRoute, got %d", n)
		}
	}
	if maxWeight == 0 {
		add("spec.steps", "no setWeight step sends traffic to the canary")
	}
}

func validatePause(f string, p *PauseStep, add addFunc) {
	switch {
	case p.Duration == nil && !p.UntilApproved:
		add(f, "needs a duration or untilApproved: true")
	case p.Duration != nil && p.UntilApproved:
		add(f, "set either duration or untilApproved, not both")
	case p.Duration != nil && p.Duration.Duration <= 0:
		add(f+".duration", "must be positive, got %s", p.Duration.Duration)
	}
}

func validateRollback(r RollbackPolicy, add addFunc) {
	for _, f := range []struct{ name, v string }{
		{"onFailure", r.OnFailure}, {"onInconclusive", r.OnInconclusive},
		{"onError", r.OnError}, {"onSyncFailure", r.OnSyncFailure},
	} {
		if f.v != ActionRevert && f.v != ActionHold {
			add("spec.rollback."+f.name, "must be %q or %q, got %q", ActionRevert, ActionHold, f.v)
		}
	}
}
