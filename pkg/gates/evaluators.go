package gates

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// Evaluators dispatches a gate to the evaluator for its type, e.g.
//
//	gates.Evaluators{canary.GateThreshold: gates.NewThreshold(prom, logger)}
//
// A gate whose type has no evaluator is a terminal error; there is no
// fallback evaluator.
type Evaluators map[string]canary.GateEvaluator

var _ canary.GateEvaluator = Evaluators(nil)

// Evaluate assesses gate with the evaluator registered for gate.Type.
func (e Evaluators) Evaluate(ctx context.Context, gate canary.GateSpec, w canary.Window) (canary.GateResult, error) {
	ev := e[gate.Type]
	if ev == nil {
		return canary.GateResult{}, canary.Terminalf("gate %s: unknown gate type %q (known types: %s)",
			gate.Name, gate.Type, e.known())
	}
	return ev.Evaluate(ctx, gate, w)
}

// known lists the registered types, sorted.
func (e Evaluators) known() string {
	var types []string
	for t, ev := range e {
		if ev != nil {
			types = append(types, t)
		}
	}
	if len(types) == 0 {
		return "none registered"
	}
	slices.Sort(types)
	return strings.Join(types, ", ")
}

// ForPrometheus wires every gate type to one Prometheus: threshold gates
// run PromQL or measure signals, and judge, drift and gauge gates read
// signals through the plan's preset.
func ForPrometheus(api v1.API, logger *slog.Logger, opts ...ThresholdOption) Evaluators {
	sourceFor := func(spec *canary.SignalsSpec) (signals.Source, error) {
		return &PromSignals{API: api, Spec: spec}, nil
	}
	return ForSignals(sourceFor, NewThreshold(api, logger, append(opts, WithSignals(sourceFor))...))
}

// ForSignals wires the signal gates to a source, beside a threshold
// evaluator, and golden-set gates to HTTP.
func ForSignals(sourceFor func(*canary.SignalsSpec) (signals.Source, error), threshold canary.GateEvaluator) Evaluators {
	sg := &SignalGates{SourceFor: sourceFor}
	return Evaluators{
		canary.GateThreshold: threshold,
		canary.GateJudge:     sg,
		canary.GateDrift:     sg,
		canary.GateGauge:     sg,
		canary.GateGoldenSet: NewGoldenSetGate(),
	}
}
