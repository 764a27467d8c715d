package rolloutsimport

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
)

// analysisRef is a Rollout's inline step analysis or background analysis.
type analysisRef struct {
	Templates []struct {
		TemplateName string `json:"templateName"`
		ClusterScope bool   `json:"clusterScope"`
	} `json:"templates"`
	Args []argument `json:"args"`
}

// knownAnalysisRef reports whether an analysis reference's key is read.
func knownAnalysisRef(k string) bool { return k == "templates" || k == "args" }

// analysis converts one analysis reference at path f into a canarybot
// analysis step whose gates are the templates' metrics; nil when no
// metric could be carried over.
func (c *converter) analysis(f string, raw json.RawMessage, background bool) (*canary.AnalysisStep, error) {
	var keys map[string]json.RawMessage
	var ref analysisRef
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, fmt.Errorf("%s: %w", c.rpath(f), err)
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		return nil, fmt.Errorf("%s: %w", c.rpath(f), err)
	}
	for _, k := range sortedKeys(keys) {
		if !knownAnalysisRef(k) {
			why := "canarybot has no equivalent"
			if background && k == "startingStep" {
				why = "canarybot's background analysis runs from the first step"
			}
			c.drop(c.rpath(f+"."+k), "%s", why)
		}
	}
	if len(ref.Templates) == 0 {
		return nil, fmt.Errorf("%s: at least one template is required", c.rpath(f+".templates"))
	}
	var gates []string
	for i, tr := range ref.Templates {
		tf := fmt.Sprintf("%s.templates[%d]", f, i)
		kind := KindAnalysisTemplate
		if tr.ClusterScope {
			kind = KindClusterAnalysisTemplate
		}
		t, ok := c.src.templates[kind+"/"+tr.TemplateName]
		if !ok {
			return nil, fmt.Errorf("%s: no %s named %q in %s", c.rpath(tf+".templateName"), kind, tr.TemplateName, strings.Join(c.src.files, ", "))
		}
		args, err := c.resolveArgs(f, t, ref.Args)
		if err != nil {
			return nil, err
		}
		names, err := c.templateGates(t, args)
		if err != nil {
			return nil, err
		}
		gates = append(gates, names...)
	}
	if len(gates) == 0 {
		c.drop(c.rpath(f), "no metric of its templates could be carried over")
		return nil, nil
	}
	return &canary.AnalysisStep{Gates: gates}, nil
}

// background converts spec.strategy.canary.analysis.
func (c *converter) background(raw json.RawMessage) (*canary.AnalysisStep, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	return c.analysis("spec.strategy.canary.analysis", raw, true)
}

// argValues are the args one template is instantiated with: values by
// name, and the args only the cluster could resolve, with their paths.
type argValues struct {
	values     map[string]string
	unresolved map[string]string
}

// resolveArgs merges the template's declared args with the Rollout's
// (which win) and the options' (which win over both). A declared arg
// with no value anywhere is an error, as it is for Argo Rollouts.
func (c *converter) resolveArgs(f string, t *template, given []argument) (argValues, error) {
	a := argValues{values: map[string]string{}, unresolved: map[string]string{}}
	declared := map[string]bool{}
	for i, d := range t.Spec.Args {
		declared[d.Name] = true
		if d.Value != nil {
			a.values[d.Name] = *d.Value
		} else if len(d.ValueFrom) > 0 {
			a.unresolved[d.Name] = fmt.Sprintf("%s: %s: spec.args[%d].valueFrom", t.file, t.label(), i)
		}
	}
	for i, g := range given {
		if !declared[g.Name] {
			continue // Argo Rollouts ignores args a template does not declare
		}
		switch {
		case g.Value != nil:
			a.values[g.Name] = *g.Value
			delete(a.unresolved, g.Name)
		case len(g.ValueFrom) > 0:
			delete(a.values, g.Name)
			a.unresolved[g.Name] = c.rpath(fmt.Sprintf("%s.args[%d].valueFrom", f, i))
		}
	}
	for n, v := range c.opts.Args {
		if declared[n] {
			a.values[n] = v
			delete(a.unresolved, n)
		}
	}
	for _, d := range t.Spec.Args {
		_, ok := a.values[d.Name]
		if _, later := a.unresolved[d.Name]; !ok && !later {
			return a, fmt.Errorf("%s: args: %s needs arg %q, which has no value (give it in the analysis args or with --arg %s=VALUE)",
				c.rpath(f), t.label(), d.Name, d.Name)
		}
	}
	return a, nil
}

var tag = regexp.MustCompile(`\{\{([^{}]*)\}\}`)

// errUnresolved marks a placeholder whose value only the cluster knows.
var errUnresolved = errors.New("cannot be resolved statically")

// subst replaces {{args.NAME}} (spaces allowed inside the braces) with
// the arg's value. An arg from valueFrom is errUnresolved; any other tag,
// or an undeclared arg, is an error.
func (a argValues) subst(s string) (string, error) {
	var err error
	out := tag.ReplaceAllStringFunc(s, func(m string) string {
		name := strings.TrimSpace(m[2 : len(m)-2])
		arg, isArg := strings.CutPrefix(name, "args.")
		if v, ok := a.values[arg]; isArg && ok {
			return v
		}
		if from, ok := a.unresolved[arg]; isArg && ok && err == nil {
			err = fmt.Errorf("%s is set by valueFrom (%s), which only the cluster resolves; give it with --arg %s=VALUE: %w", m, from, arg, errUnresolved)
		} else if !isArg && err == nil {
			err = fmt.Errorf("%s: only {{args.NAME}} placeholders can be resolved: %w", m, errUnresolved)
		} else if err == nil {
			err = fmt.Errorf("%s: no arg %q is declared in the template's spec.args", m, arg)
		}
		return m
	})
	return out, err
}
