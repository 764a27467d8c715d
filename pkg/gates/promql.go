package gates

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/canarybot/canarybot/pkg/canary"
)

// ValidatePlanQueries parses the PromQL query of every threshold gate of
// plan (and the series selector of every guardrail counter), as Prometheus would before running it, and returns the parse
// errors of all of them joined, each with its field path and position, e.g.
//
//	spec.gates[1].threshold.query: invalid PromQL: 1:5: parse error: unclosed left parenthesis
//
// The parser is Prometheus 2.51's: a function added later is unknown to it.
func ValidatePlanQueries(plan *canary.CanaryPlan) error {
	var errs []error
	for i, g := range plan.Spec.Gates {
		if g.Threshold == nil || strings.TrimSpace(g.Threshold.Query) == "" {
			continue // canary's Validate reports a missing query
		}
		field := fmt.Sprintf("spec.gates[%d].threshold.query", i)
		errs = append(errs, checkPromQL(field, g.Threshold.Query))
	}
	errs = append(errs, guardrailSelectors(plan))
	return errors.Join(errs...)
}

// checkPromQL parses one query. Like Prometheus, it reports the first
// parse error only: the ones after it mostly follow from it.
func checkPromQL(field, query string) error {
	if _, err := parser.ParseExpr(query); err != nil {
		return fmt.Errorf("%s: invalid PromQL: %w", field, err)
	}
	return nil
}
