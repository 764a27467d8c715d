package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const importRollout = `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: guestbook}
spec:
  strategy:
    canary:
      steps:
      - setWeight: 20
      - analysis:
          templates: [{templateName: %TEMPLATE%}]
          args: %ARGS%
`

const importTemplate = `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: success-rate}
spec:
  args: [{name: service-name}]
  metrics:
  - name: success-rate
    successCondition: result[0] >= 0.95
    provider: {prometheus: {query: 'sum(rate(x{svc="{{args.%ARG%}}"}[5m]))'}}
`

// TestImportMalformedInput: input that is not YAML, of the wrong kind,
// naming an unknown template, missing an arg or referencing an undeclared
// one is refused with an error that names the file and the path.
func TestImportMalformedInput(t *testing.T) {
	rollout := strings.NewReplacer("%TEMPLATE%", "success-rate", "%ARGS%", "[{name: service-name, value: guestbook}]").Replace(importRollout)
	tmpl := strings.ReplaceAll(importTemplate, "%ARG%", "service-name")
	for name, c := range map[string]struct {
		rollout, tmpl string
		want          []string
	}{
		"not YAML":            {"kind: [Rollout\n", tmpl, []string{"r.yaml", "not a YAML object"}},
		"wrong kind":          {"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", tmpl, []string{"r.yaml: no document of kind Rollout"}},
		"wrong template kind": {rollout, "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n", []string{"t.yaml: kind: want AnalysisTemplate or ClusterAnalysisTemplate, got \"Service\""}},
		"unknown template": {strings.ReplaceAll(rollout, "templateName: success-rate", "templateName: nope"), tmpl,
			[]string{"r.yaml: spec.strategy.canary.steps[1].analysis.templates[0].templateName: no AnalysisTemplate named \"nope\" in", "t.yaml"}},
		"missing arg": {strings.ReplaceAll(rollout, "[{name: service-name, value: guestbook}]", "[]"), tmpl,
			[]string{"r.yaml: spec.strategy.canary.steps[1].analysis: args: AnalysisTemplate success-rate needs arg \"service-name\""}},
		"undeclared arg": {rollout, strings.ReplaceAll(importTemplate, "%ARG%", "namespace"),
			[]string{"t.yaml: AnalysisTemplate success-rate: metrics[0].provider.prometheus.query: {{args.namespace}}: no arg \"namespace\" is declared"}},
		"blue-green": {"apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: x}\nspec: {strategy: {blueGreen: {activeService: a}}}\n", tmpl,
			[]string{"r.yaml: spec.strategy.canary: is required (found [blueGreen])"}},
		"bad pause": {strings.ReplaceAll(rollout, "- setWeight: 20", "- setWeight: 20\n      - pause: {duration: soon}"), tmpl,
			[]string{"r.yaml: spec.strategy.canary.steps[1].pause.duration: parse duration \"soon\""}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			r, tp := filepath.Join(dir, "r.yaml"), filepath.Join(dir, "t.yaml")
			for p, s := range map[string]string{r: c.rollout, tp: c.tmpl} {
				if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			out, _, err := run(t, "import", "argo-rollouts", r, tp, "--oci-repository", "ghcr.io/x/m", "--overlay", "o",
				"--traffic-mode", "kserve", "--inference-service", "guestbook")
			if err == nil {
				t.Fatalf("no error; plan:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestImportNeedsSourceAndOverlay: what no Rollout says is asked for by
// flag, all at once.
func TestImportNeedsSourceAndOverlay(t *testing.T) {
	_, _, err := run(t, "import", "argo-rollouts", "testdata/import/argo-inline-analysis/rollout.yaml")
	if err == nil || !strings.Contains(err.Error(), "spec.model.source") || !strings.Contains(err.Error(), "spec.overlay: pass --overlay") {
		t.Fatalf("err = %v, want both spec.model.source and spec.overlay named", err)
	}
}
