package canary

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const latencyTemplate = `apiVersion: canarybot.dev/v1alpha1
kind: GateTemplate
metadata:
  name: latency-slo
spec:
  args:
  - name: namespace
  - name: quantile
    value: "0.95"
  gate:
    threshold:
      query: histogram_quantile({{args.quantile}}, sum(rate(latency_bucket{namespace="{{ args.namespace }}"}[1m])) by (le))
      successCondition: result < 2
      interval: 30s
      failureLimit: 2
`

// templatedPlan is goodPlan whose errors gate uses latency-slo.
func templatedPlan(name, args string) string {
	p := strings.Replace(namedPlan(name), `    threshold:
      query: sum(rate(errors[1m]))
      successCondition: result < 0.01
      interval: 30s
`, "    templateRef:\n      name: latency-slo\n"+args, 1)
	return p
}

func TestDiscoverResolvesGateTemplates(t *testing.T) {
	fsys := fstest.MapFS{
		".canarybot/plans/templates.yaml": {Data: []byte(latencyTemplate)},
		".canarybot/plans/a.yaml":         {Data: []byte(templatedPlan("alpha", "      args: {namespace: prod}\n"))},
		".canarybot/plans/b.yaml":         {Data: []byte(templatedPlan("beta", "      args: {namespace: dev, quantile: \"0.99\"}\n"))},
		".canarybot/plans/c.yaml":         {Data: []byte(templatedPlan("gamma", ""))},
		".canarybot/plans/d.yaml":         {Data: []byte(templatedPlan("delta", "      args: {namespace: x, region: eu}\n"))},
		".canarybot/plans/e.yaml":         {Data: []byte(strings.Replace(templatedPlan("eps", ""), "name: latency-slo", "name: nope", 1))},
	}
	c, err := Discover(Tree{Head: "h", FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := c.Lookup("alpha")
	if !ok {
		t.Fatalf("alpha not found; problems: %v", c.Invalid)
	}
	g := a.Spec.Gates[0]
	if g.Name != "errors" || g.Type != GateThreshold || g.TemplateRef != nil || g.From == nil || g.From.Template != "latency-slo" {
		t.Fatalf("resolved gate = %+v", g)
	}
	if want := `histogram_quantile(0.95, sum(rate(latency_bucket{namespace="prod"}[1m])) by (le))`; g.Threshold.Query != want {
		t.Errorf("query = %s\nwant    %s", g.Threshold.Query, want)
	}
	if *g.Threshold.FailureLimit != 2 || g.Threshold.Interval.Duration != 30*time.Second || *g.Threshold.Count != DefaultGateCount {
		t.Errorf("template fields or defaults lost: %+v", g.Threshold)
	}
	b, _ := c.Lookup("beta")
	if q := b.Spec.Gates[0].Threshold.Query; !strings.Contains(q, "histogram_quantile(0.99,") || !strings.Contains(q, `namespace="dev"`) {
		t.Errorf("beta's query = %s", q)
	}
	if TemplateHashes(a)["errors"] == TemplateHashes(b)["errors"] {
		t.Error("different arguments gave the same template hash")
	}
	problems := map[string]string{}
	for _, p := range c.Invalid {
		problems[p.Name] = p.Err.Error()
	}
	for name, want := range map[string]string{
		"gamma": "spec.gates[0].templateRef (GateTemplate latency-slo): args.namespace: is required",
		"delta": "args.region: the template has no such argument",
		"eps":   `spec.gates[0].templateRef.name: no GateTemplate named "nope" (known: latency-slo)`,
	} {
		if !strings.Contains(problems[name], want) {
			t.Errorf("%s: problem %q, want it to say %q", name, problems[name], want)
		}
	}
	if len(c.Plans) != 2 || len(c.Invalid) != 3 {
		t.Errorf("%d plans, %d problems: %v", len(c.Plans), len(c.Invalid), c.Invalid)
	}
}

func TestGateTemplateValidation(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"undeclared placeholder", strings.Replace(latencyTemplate, "{{args.quantile}}", "{{args.q}}", 1), "{{q}} is not a declared argument"},
		{"not an argument", strings.Replace(latencyTemplate, "{{args.quantile}}", "{{ .Values.q }}", 1), "{{.Values.q}} is not a declared argument"},
		{"unknown gate field", strings.Replace(latencyTemplate, "failureLimit: 2", "failureLimt: 2", 1), "spec.gate.threshold.failureLimt: unknown field"},
		{"named gate", strings.Replace(latencyTemplate, "  gate:\n", "  gate:\n    name: x\n", 1), "spec.gate.name: must be empty"},
		{"nested template", strings.Replace(latencyTemplate, "  gate:\n", "  gate:\n    templateRef: {name: other}\n", 1), "cannot use another template"},
		{"duplicate arg", strings.Replace(latencyTemplate, "  - name: quantile", "  - name: namespace", 1), `spec.args[1].name: duplicate argument "namespace"`},
		{"bad arg name", strings.Replace(latencyTemplate, "  - name: quantile", "  - name: 9q", 1), "spec.args[1].name"},
		{"bad name", strings.Replace(latencyTemplate, "name: latency-slo", "name: Latency_SLO", 1), "metadata.name"},
		{"no gate", "apiVersion: canarybot.dev/v1alpha1\nkind: GateTemplate\nmetadata: {name: x}\nspec: {}\n", "spec.gate: is required"},
		{"newline in a default", strings.Replace(latencyTemplate, `value: "0.95"`, `value: "0.95\n"`, 1), "control characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseGateTemplate([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
	if _, err := ParseGateTemplate([]byte(latencyTemplate)); err != nil {
		t.Fatalf("the good template: %v", err)
	}
}

func TestTemplateArgumentsCannotChangeTheGatesShape(t *testing.T) {
	set := GateTemplates{}
	tmpl, err := ParseGateTemplate([]byte(latencyTemplate))
	if err != nil {
		t.Fatal(err)
	}
	set[tmpl.Metadata.Name] = tmpl
	// A value that would be YAML structure if pasted into the text stays
	// a string inside the query.
	p, err := ParsePlanWith([]byte(templatedPlan("alpha", "      args: {namespace: 'x\"}\\ninterval: 1s #'}\n")), set)
	if err != nil {
		t.Fatal(err)
	}
	th := p.Spec.Gates[0].Threshold
	if th.Interval.Duration != 30*time.Second || !strings.Contains(th.Query, `namespace="x"}\ninterval: 1s #"`) {
		t.Errorf("interval %s, query %s", th.Interval.Duration, th.Query)
	}
	if _, err := ParsePlanWith([]byte(templatedPlan("alpha", "      args: {namespace: \"a\\nb\"}\n")), set); err == nil ||
		!strings.Contains(err.Error(), "args.namespace: must not hold control characters") {
		t.Errorf("a newline in an argument: %v", err)
	}
	inline := strings.Replace(templatedPlan("alpha", "      args: {namespace: p}\n"), "    templateRef:", "    type: threshold\n    templateRef:", 1)
	if _, err := ParsePlanWith([]byte(inline), set); err == nil || !strings.Contains(err.Error(), "either a templateRef or defined inline") {
		t.Errorf("a gate both templated and inline: %v", err)
	}
	if _, err := ParsePlan([]byte(templatedPlan("alpha", "      args: {namespace: p}\n"))); err == nil ||
		!strings.Contains(err.Error(), `no GateTemplate named "latency-slo"`) {
		t.Errorf("ParsePlan without templates: %v", err)
	}
}

func TestAChangedTemplateRestartsTheRollout(t *testing.T) {
	read := func(tmpl string) *CanaryPlan {
		t.Helper()
		c, err := Discover(Tree{Head: "h", FS: fstest.MapFS{
			".canarybot/plans/t.yaml": {Data: []byte(tmpl)},
			".canarybot/plans/a.yaml": {Data: []byte(templatedPlan("alpha", "      args: {namespace: prod}\n"))},
		}})
		if err != nil {
			t.Fatal(err)
		}
		p, ok := c.Lookup("alpha")
		if !ok {
			t.Fatalf("alpha: %v", c.Invalid)
		}
		return p
	}
	before := read(latencyTemplate)
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	st := NewState("alpha", Artifact{URI: "oci://r/m@sha256:" + strings.Repeat("a", 64)})
	v2 := Artifact{URI: "oci://r/m@sha256:" + strings.Repeat("b", 64)}
	st = Apply(before, st, start(before, v2, "new artifact"), t0)
	if got := st.Status.Templates["errors"]; !strings.HasPrefix(got, "latency-slo@") {
		t.Fatalf("state templates = %v", st.Status.Templates)
	}
	st = Apply(before, st, next(before, 0, "weight synced"), t0.Add(time.Minute))
	synced := Observations{Sync: SyncObservation{Ready: true}}
	if d := Decide(before, st, synced, t0.Add(2*time.Minute)); strings.Contains(d.Reason, "restarting") {
		t.Fatalf("unchanged template restarted: %+v", d)
	}
	after := read(strings.Replace(latencyTemplate, "result < 2", "result < 1.5", 1))
	d := Decide(after, st, synced, t0.Add(2*time.Minute))
	if d.Action != ActAdvance || d.Step != 0 ||
		d.Reason != "gate errors (GateTemplate latency-slo) changed mid-rollout; restarting from step 0" {
		t.Errorf("decision after the template changed = %+v", d)
	}
}

func TestReadPlanResolvesTemplatesBesideThePlans(t *testing.T) {
	tree := Tree{Head: "h", FS: fstest.MapFS{
		".canarybot/config.yaml":         {Data: []byte("apiVersion: canarybot.dev/v1alpha1\nkind: RepositoryConfig\nspec: {plansDir: deploy/plans}\n")},
		"deploy/plans/gates/slo.yaml":    {Data: []byte("# shared gates\n---\n" + latencyTemplate)},
		"deploy/plans/alpha.yaml":        {Data: []byte(templatedPlan("alpha", "      args: {namespace: prod}\n"))},
		"deploy/plans/broken/dup.yaml":   {Data: []byte("kind: Other\n")},
		".canarybot/plans/ignored.yaml":  {Data: []byte(strings.Replace(latencyTemplate, "result < 2", "result < 9", 1))},
		"deploy/plans/plain/gamma.yaml":  {Data: []byte(namedPlan("gamma"))},
		"deploy/plans/plain/unused.yaml": {Data: []byte("apiVersion: canarybot.dev/v1alpha1\nkind: GateTemplate\nmetadata: {name: Bad}\nspec: {}\n")},
	}}
	p, err := ReadPlan(tree, "deploy/plans/alpha.yaml")
	if err == nil || !strings.Contains(err.Error(), "deploy/plans/plain/unused.yaml: invalid GateTemplate: metadata.name") {
		t.Fatalf("a broken template beside the plans: plan %v, err %v", p, err)
	}
	tree.FS.(fstest.MapFS)["deploy/plans/plain/unused.yaml"] = &fstest.MapFile{Data: []byte("# none\n")}
	if p, err = ReadPlan(tree, "deploy/plans/alpha.yaml"); err != nil {
		t.Fatal(err)
	}
	if g := p.Spec.Gates[0]; g.Threshold.SuccessCondition != "result < 2" || !strings.Contains(g.Threshold.Query, `namespace="prod"`) {
		t.Errorf("resolved gate = %+v", g.Threshold)
	}
	// A plan without templates does not read them.
	tree.FS.(fstest.MapFS)["deploy/plans/plain/unused.yaml"] = &fstest.MapFile{Data: []byte("kind: GateTemplate\n")}
	if _, err := ReadPlan(tree, "deploy/plans/plain/gamma.yaml"); err != nil {
		t.Errorf("a plan without templates: %v", err)
	}
}

// FuzzGateTemplate: parsing a template and instantiating it with any
// argument value never panics; an instantiated gate holds no placeholder
// of a declared argument, and a value cannot add fields to the gate.
func FuzzGateTemplate(f *testing.F) {
	f.Add([]byte(latencyTemplate), "prod")
	f.Add([]byte(latencyTemplate), `x"} or vector(1) #`)
	f.Add([]byte(strings.Replace(latencyTemplate, "result < 2", "result < {{args.quantile}}", 1)), "{{args.namespace}}")
	f.Fuzz(func(t *testing.T, doc []byte, value string) {
		tmpl, err := ParseGateTemplate(doc)
		if err != nil {
			if !strings.HasPrefix(err.Error(), ErrInvalidTemplate.Error()) {
				t.Fatalf("error %q does not wrap ErrInvalidTemplate", err)
			}
			return
		}
		args := map[string]string{}
		for _, a := range tmpl.Spec.Args {
			args[a.Name] = value
		}
		g, err := tmpl.instantiate(args)
		if err != nil {
			if checkArgValue(value) == nil {
				t.Fatalf("a valid value %q was refused: %v", value, err)
			}
			return
		}
		if g.From == nil || g.From.Template != tmpl.Metadata.Name {
			t.Fatalf("provenance = %+v", g.From)
		}
		if strings.Contains(value, "{{") {
			return // the value itself may look like a placeholder
		}
		b, err := json.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range tmpl.Spec.Args {
			if strings.Contains(string(b), "{{args."+a.Name+"}}") {
				t.Fatalf("placeholder {{args.%s}} left in %s", a.Name, b)
			}
		}
	})
}
