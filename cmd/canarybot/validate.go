package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/redact"
	"github.com/canarybot/canarybot/pkg/registry/oci"
)

func newValidate(g *globals) *cobra.Command {
	var templates []string
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check CanaryPlan and GateTemplate files and list every problem with its field path",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, files []string) error {
			bad := 0
			for _, f := range files {
				errs := validateFile(f, templates)
				if len(errs) == 0 {
					fmt.Fprintf(g.stdout, "%s: ok\n", f)
					continue
				}
				bad++
				for _, e := range errs {
					fmt.Fprintf(g.stdout, "%s: %s\n", f, redact.URL(e))
				}
			}
			if bad > 0 {
				fmt.Fprintf(g.stderr, "%d of %d plans are invalid\n", bad, len(files))
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&templates, "templates", nil,
		"GateTemplate file or directory for plans' templateRefs (repeatable; default: each plan's directory)")
	return cmd
}

// validateFile returns every problem in one plan file, one line each:
// schema, validation, the OCI semver constraint, gate queries (PromQL)
// and gate conditions together.
func validateFile(path string, templates []string) []string {
	b, err := readLimited(path, canary.MaxPlanBytes)
	if err != nil {
		return []string{err.Error()}
	}
	var head struct {
		Kind string `json:"kind"`
	}
	if yaml.Unmarshal(b, &head) == nil && head.Kind == canary.KindGateTemplate {
		var lines []string
		if err := (canary.GateTemplates{}).AddFile(path, b); err != nil {
			for _, l := range splitErr(err) {
				lines = append(lines, strings.TrimPrefix(l, path+": "))
			}
		}
		return lines
	}
	plan, err := canary.DecodePlan(b)
	if err != nil {
		return splitErr(err)
	}
	invalid := plan.Validate()
	if plan.UsesTemplates() {
		if plan, _, err = readPlanFile(path, templates); err != nil {
			return splitErr(err)
		}
		invalid = nil // ParsePlanWith validated the resolved plan
	}
	errs := []error{invalid, oci.ValidatePlan(plan), gates.ValidatePlanQueries(plan)}
	for i, gs := range plan.Spec.Gates {
		if gs.Threshold == nil {
			continue
		}
		for _, c := range []struct{ field, expr string }{
			{"successCondition", gs.Threshold.SuccessCondition}, {"failureCondition", gs.Threshold.FailureCondition},
		} {
			if err := gates.CompileCondition(c.expr); err != nil {
				errs = append(errs, fmt.Errorf("spec.gates[%d].threshold.%s: %w", i, c.field, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return splitErr(err)
	}
	return nil
}

// splitErr turns a joined error into lines, without the sentinel prefix.
func splitErr(err error) []string {
	msg := strings.TrimPrefix(err.Error(), canary.ErrInvalidPlan.Error()+": ")
	return strings.Split(msg, "\n")
}

// readLimited reads a file, refusing one larger than limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read plan %s: over the %d-byte limit", path, limit)
	}
	return b, nil
}
