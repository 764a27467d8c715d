package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// canarybot validate catches, each with its field path, what the bot
// would only find at run time: invalid PromQL, an invalid semver
// constraint, and (with every other problem) a value of the wrong type.
func TestValidateCatchesRunTimeFailures(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, pairs ...string) string {
		t.Helper()
		plan := retryPlan
		for i := 0; i+1 < len(pairs); i += 2 {
			if !strings.Contains(plan, pairs[i]) {
				t.Fatalf("retryPlan lacks %q", pairs[i])
			}
			plan = strings.Replace(plan, pairs[i], pairs[i+1], 1)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(plan), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const gates = "  - setWeight: 100\n"
	promql := write("promql.yaml", gates, gates+`  gates:
  - name: ok
    threshold: {query: 'sum(rate(x[5m]))', successCondition: result < 1}
  - name: broken
    threshold: {query: 'sum(rate(x[5m])', successCondition: result < 1}
`)
	semver := write("semver.yaml", "repository: ghcr.io/acme/fraud-detector}", "repository: ghcr.io/acme/fraud-detector, semver: '>=banana'}")
	types := write("types.yaml", "  - setWeight: 10\n", "  - setWeight: ten\n", "  overlay:", "  overlays: x\n  overlay:")
	good := write("good.yaml", "repository: ghcr.io/acme/fraud-detector}", "repository: ghcr.io/acme/fraud-detector, semver: '>=1.0.0 <2'}")
	out, _, err := run(t, "validate", promql, semver, types, good)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err = %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{
		"promql.yaml: spec.gates[1].threshold.query: invalid PromQL: 1:16: parse error: unclosed left parenthesis",
		`semver.yaml: spec.model.source.oci.semver: invalid semver constraint ">=banana"`,
		"types.yaml: spec.overlays: unknown field",
		`types.yaml: spec.steps[0].setWeight: want an integer, got "ten"`,
		"good.yaml: ok",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "promql.yaml: spec.gates[0]") {
		t.Errorf("a valid query was refused:\n%s", out)
	}
	app := write("app.yaml", "argocd: {application: fraud-detector}", "argocd: {application: Fraud_Detector}")
	out, _, _ = run(t, "validate", app)
	if want := `app.yaml: spec.argocd.application: must be a Kubernetes name`; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

// Every plan the repository ships validates with every check.
func TestValidateShippedPlans(t *testing.T) {
	var files []string
	for _, pattern := range []string{"../../examples/*.yaml", "../../bench/plans/*.yaml", "../../internal/demo/plan.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil || len(m) == 0 {
			t.Fatalf("%s: %v, %d files", pattern, err, len(m))
		}
		files = append(files, m...)
	}
	for _, f := range files {
		if errs := validateFile(f, nil); len(errs) > 0 {
			t.Errorf("%s:\n%s", f, strings.Join(errs, "\n"))
		}
	}
}

// A plan's GateTemplates are read beside it, or from --templates; a
// template's own problems and a use's are listed with their paths.
func TestValidateResolvesGateTemplates(t *testing.T) {
	dir := t.TempDir()
	plan, err := os.ReadFile("../../examples/qwen-gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(p, plan, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "validate", p)
	if err == nil || !strings.Contains(out, `plan.yaml: spec.gates[2].templateRef.name: no GateTemplate named "ttft-p95-slo"`) {
		t.Errorf("no templates beside the plan: err %v, out:\n%s", err, out)
	}
	if out, _, err = run(t, "validate", "--templates", "../../examples/gate-templates.yaml", p); err != nil {
		t.Errorf("--templates: err %v, out:\n%s", err, out)
	}
	bad := filepath.Join(dir, "gates.yaml")
	tmpl, err := os.ReadFile("../../examples/gate-templates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(string(tmpl), "{{args.max}}", "{{args.maximum}}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, "validate", bad, p)
	if err == nil || !strings.Contains(out, bad+": invalid GateTemplate: spec.gate: {{maximum}} is not a declared argument") ||
		!strings.Contains(out, p+": "+bad+": invalid GateTemplate: spec.gate: {{maximum}} is not a declared argument") {
		t.Errorf("a broken template: err %v, out:\n%s", err, out)
	}
}
