// Package gates assesses canarybot's analysis gates.
//
// A gate is a sequence of measurements judged against limits with Argo
// Rollouts' semantics (assessMetricStatus in argo-rollouts analysis/analysis.go):
// Assess is the pure judgement, Conditions turns one query result into one
// measurement, and Threshold is the Prometheus-backed canary.GateEvaluator.
// Evaluators dispatches on the gate type and rejects unknown types.
//
// Evaluators are stateless: a gate's measurement instants are derived from
// the analysis window, and each measurement is an instant query evaluated at
// its own instant, so re-evaluating after a restart repeats the same
// measurements instead of relying on anything remembered in memory.
package gates

import (
	"github.com/canarybot/canarybot/pkg/canary"
)

// Defaults for unset threshold gate fields, the same as CanaryPlan.Default
// applies. They follow Argo Rollouts,
// except that Argo Rollouts runs a metric without a count indefinitely,
// whereas canarybot always bounds an analysis.
const (
	// DefaultInterval is the time between two measurements.
	DefaultInterval = canary.DefaultGateInterval
	// DefaultCount is the number of non-error measurements that make a
	// gate Successful.
	DefaultCount = canary.DefaultGateCount
	// DefaultConsecutiveErrorLimit is how many errors in a row are
	// tolerated; one more makes the gate Error.
	DefaultConsecutiveErrorLimit = canary.DefaultConsecutiveErrorLimit
)

// Limits are the thresholds Assess applies. The zero value allows no
// failure, no inconclusive and no error; use LimitsFor for the defaults.
type Limits struct {
	// Count is the number of non-error measurements after which the gate
	// is Successful. Zero or less means no count: the gate stays Running
	// until a limit is exceeded.
	Count int
	// FailureLimit is how many Failed measurements are tolerated.
	FailureLimit int
	// InconclusiveLimit is how many Inconclusive measurements are tolerated.
	InconclusiveLimit int
	// ConsecutiveErrorLimit is how many trailing Error measurements in a
	// row are tolerated.
	ConsecutiveErrorLimit int
}

// LimitsFor returns the limits of a threshold gate, with the defaults
// applied to unset fields. A nil gate gets all defaults.
func LimitsFor(g *canary.ThresholdGate) Limits {
	if g == nil {
		g = &canary.ThresholdGate{}
	}
	return Limits{
		Count:                 intOr(g.Count, DefaultCount),
		FailureLimit:          intOr(g.FailureLimit, 0),
		InconclusiveLimit:     intOr(g.InconclusiveLimit, 0),
		ConsecutiveErrorLimit: intOr(g.ConsecutiveErrorLimit, DefaultConsecutiveErrorLimit),
	}
}

// Tally counts measurements by verdict.
type Tally struct {
	Successful   int
	Failed       int
	Inconclusive int
	Errors       int
	// Taken counts completed non-error measurements, as Argo Rollouts'
	// MetricResult.Count does: an errored measurement is not counted.
	Taken int
	// ConsecutiveErrors is the number of trailing Error measurements.
	ConsecutiveErrors int
}

// Count tallies ms. Measurements whose verdict is not a completed one
// (Running, or empty) are ignored.
func Count(ms []canary.Measurement) Tally {
	var t Tally
	for _, m := range ms {
		switch m.Verdict {
		case canary.VerdictSuccessful:
			t.Successful++
		case canary.VerdictFailed:
			t.Failed++
		case canary.VerdictInconclusive:
			t.Inconclusive++
		case canary.VerdictError:
			t.Errors++
			t.ConsecutiveErrors++
			continue
		default:
			continue
		}
		t.Taken++
		t.ConsecutiveErrors = 0
	}
	return t
}

// Assess judges a gate's measurements, oldest first, against limits, after
// Argo Rollouts' assessMetricStatus:
//
//   - no measurement, or a last measurement still Running: Running;
//   - more Failed than FailureLimit: Failed;
//   - more Inconclusive than InconclusiveLimit: Inconclusive;
//   - more trailing Errors in a row than ConsecutiveErrorLimit: Error;
//   - at least Count non-error measurements: Successful;
//   - otherwise Running.
//
// The checks run in that order, so when several limits are exceeded at
// once a business result (Failed, then Inconclusive) outranks a technical
// fault (Error). Argo Rollouts lets the last exceeded limit win instead;
// the difference only shows on input a stateless evaluator never builds,
// because it stops at the first terminal verdict. Limits must not be
// negative.
func Assess(ms []canary.Measurement, l Limits) canary.Verdict {
	if len(ms) == 0 || !completed(ms[len(ms)-1].Verdict) {
		return canary.VerdictRunning
	}
	t := Count(ms)
	switch {
	case t.Failed > l.FailureLimit:
		return canary.VerdictFailed
	case t.Inconclusive > l.InconclusiveLimit:
		return canary.VerdictInconclusive
	case t.ConsecutiveErrors > l.ConsecutiveErrorLimit:
		return canary.VerdictError
	case l.Count > 0 && t.Taken >= l.Count:
		return canary.VerdictSuccessful
	default:
		return canary.VerdictRunning
	}
}

// completed reports whether v is a final measurement verdict.
func completed(v canary.Verdict) bool {
	switch v {
	case canary.VerdictSuccessful, canary.VerdictFailed, canary.VerdictInconclusive, canary.VerdictError:
		return true
	}
	return false
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}
