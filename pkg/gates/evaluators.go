package gates

import (
	"context"
	"slices"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
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
