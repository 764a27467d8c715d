package metrics_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/canarybot/canarybot/internal/promtooltest"
)

// monitoring is manifests/monitoring, from this package's directory.
const monitoring = "../../manifests/monitoring"

var update = flag.Bool("update", false, "rewrite manifests/monitoring/prometheusrule.yaml from rules.yaml")

// ruleHeader starts the PrometheusRule; rules.yaml's groups follow under
// spec.
const ruleHeader = `# Generated from rules.yaml by
#   go test ./pkg/metrics -run TestPrometheusRuleIsGenerated -update
# Edit rules.yaml, not this file.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: canarybot
  labels:
    app.kubernetes.io/name: canarybot
    app.kubernetes.io/component: alerts
spec:
`

// prometheusRule wraps a rule file's groups in a PrometheusRule.
func prometheusRule(rules []byte) ([]byte, error) {
	i := bytes.Index(rules, []byte("\ngroups:"))
	if i < 0 {
		return nil, errors.New("rules.yaml: no top-level groups:")
	}
	var b bytes.Buffer
	b.WriteString(ruleHeader)
	for _, line := range strings.SplitAfter(string(rules[i+1:]), "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return b.Bytes(), nil
}

// The PrometheusRule is rules.yaml's groups, byte for byte and as YAML.
func TestPrometheusRuleIsGenerated(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join(monitoring, "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := prometheusRule(rules)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(monitoring, "prometheusrule.yaml")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not generated from rules.yaml: run go test ./pkg/metrics -run TestPrometheusRuleIsGenerated -update", path)
	}
	var file struct{ Groups any }
	var cr struct {
		Kind string
		Spec struct{ Groups any }
	}
	if err := yaml.Unmarshal(rules, &file); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(got, &cr); err != nil {
		t.Fatal(err)
	}
	if cr.Kind != "PrometheusRule" || file.Groups == nil || !reflect.DeepEqual(cr.Spec.Groups, file.Groups) {
		t.Errorf("the PrometheusRule's spec.groups differ from rules.yaml's groups")
	}
}

// promtool accepts the rule file, and its unit tests (tests/*.yaml) see
// every alert fire when it should and stay silent when it should not.
func TestRulesPassPromtool(t *testing.T) {
	out := promtooltest.Run(t, monitoring, "check", "rules", "rules.yaml")
	if !strings.Contains(out, "SUCCESS: 4 rules found") {
		t.Errorf("promtool check rules:\n%s", out)
	}
	tests, err := filepath.Glob(filepath.Join(monitoring, "tests", "*.yaml"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no rule tests in %s/tests: %v", monitoring, err)
	}
	for _, f := range tests {
		rel, _ := filepath.Rel(monitoring, f)
		promtooltest.Run(t, monitoring, "test", "rules", rel)
	}
	alerts := alertNames(t)
	for _, f := range tests {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if !strings.Contains(string(b), "alertname: "+a) {
				t.Errorf("%s does not test alert %s", f, a)
			}
		}
	}
}

// alertNames are the alerts rules.yaml defines.
func alertNames(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(monitoring, "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\S+)`).FindAllSubmatch(b, -1) {
		names = append(names, string(m[1]))
	}
	return names
}

var metricName = regexp.MustCompile(`\bcanarybot_[a-z_]+`)

// Every metric the rules read is one canarybot exports: a renamed metric
// cannot silently disable an alert.
func TestRulesReadExportedMetrics(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(monitoring, "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	names := exported(t)
	for _, m := range metricName.FindAllString(string(b), -1) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
		if !slices.Contains(names, m) && !slices.Contains(names, base) {
			t.Errorf("rules.yaml reads %s, which canarybot does not export (it does: %v)", m, names)
		}
	}
}

// README's "Metrics and alerts" names every metric and every alert.
func TestREADMEListsEveryMetricAndAlert(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, name := range append(exported(t), alertNames(t)...) {
		if !strings.Contains(readme, name) {
			t.Errorf("README.md does not mention %s", name)
		}
	}
}
