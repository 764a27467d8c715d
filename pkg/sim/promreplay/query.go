package promreplay

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/signals"
)

// QueryGates builds a run's gate evaluators over its signals and a
// Querier for its threshold gates' PromQL.
type QueryGates func(src signals.Source, q gates.Querier) canary.GateEvaluator

// runQuerier runs PromQL over one run's series only: every selector of a
// query gets the run's RunLabel matcher, so that a plan's queries work
// unchanged on the shared TSDB.
type runQuerier struct {
	api v1.API
	run string
}

var _ gates.Querier = runQuerier{}

// Query runs query, narrowed to the run, at ts.
func (q runQuerier) Query(ctx context.Context, query string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	narrowed, err := narrow(query, RunLabel, q.run)
	if err != nil {
		return nil, nil, nil, err
	}
	return q.api.Query(ctx, narrowed, ts, opts...)
}

// narrow adds the matcher k="v" to every selector of query.
func narrow(query, k, v string) (string, error) {
	expr, err := parser.ParseExpr(query)
	if err != nil {
		return "", fmt.Errorf("parse query: %w", err)
	}
	m, err := labels.NewMatcher(labels.MatchEqual, k, v)
	if err != nil {
		return "", fmt.Errorf("matcher %s: %w", k, err)
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			vs.LabelMatchers = append(vs.LabelMatchers, m)
		}
		return nil
	})
	return expr.String(), nil
}

// assumePassing records a run in memory, where no Prometheus answers
// PromQL yet: threshold gates that query PromQL pass as soon as their
// measurements are due (gates.AssumePassing); every other gate is
// evaluated by next. A replay whose PromQL gate decides otherwise leaves
// the recorded traffic only after that decision, or where the gate holds
// the rollout longer (then Run.Diverged says so).
type assumePassing struct{ next canary.GateEvaluator }

func (a assumePassing) Evaluate(ctx context.Context, gate canary.GateSpec, w canary.Window) (canary.GateResult, error) {
	if IsPromQL(gate) {
		return gates.AssumePassing(gate, w)
	}
	return a.next.Evaluate(ctx, gate, w)
}

// IsPromQL reports whether gate is a threshold gate that queries PromQL.
func IsPromQL(gate canary.GateSpec) bool {
	return gate.Threshold != nil && gate.Threshold.Signal == nil
}
