package rolloutsimport

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Options fill what a Rollout cannot supply, and override what it can.
type Options struct {
	// Name is the plan's metadata.name; the Rollout's name by default.
	Name string
	// Model is spec.model.name; the plan's name by default.
	Model string
	// Source is spec.model.source; required (a Rollout names a server
	// image, not a model artifact).
	Source canary.SourceSpec
	// Overlay is spec.overlay; required.
	Overlay string
	// Application is spec.argocd.application; the plan's name by default.
	Application string
	// Mode is the traffic mode; gateway when the Rollout routes with the
	// Gateway API plugin, else it must be given.
	Mode string
	// HTTPRoute overrides the plugin's httpRoute (gateway mode).
	HTTPRoute string
	// InferenceService is the KServe InferenceService (kserve mode).
	InferenceService string
	// StableService, CanaryService override the Rollout's services, and
	// StableInferenceService, CanaryInferenceService name each side's
	// InferenceService (gateway mode; by default the service name less a
	// "-predictor" suffix).
	StableService, CanaryService                   string
	StableInferenceService, CanaryInferenceService string
	// Args supply (or override) analysis args by name: the only way to
	// give a value to an arg whose valueFrom the cluster resolves.
	Args map[string]string
	// Signals, when set, is written as spec.signals (the Rollout has no
	// equivalent): what judge gates and the simulator read.
	Signals *canary.SignalsSpec
	// CheckCondition, when set, rejects a successCondition or
	// failureCondition canarybot cannot evaluate (gates.CompileCondition);
	// the metric is then listed as not carried over.
	CheckCondition func(string) error
}

// Item is one thing not carried over (or a note), with its YAML path.
type Item struct {
	// Path is "FILE: YAML path", e.g. "rollout.yaml:
	// spec.strategy.canary.steps[3].experiment".
	Path   string
	Reason string
}

func (i Item) String() string { return i.Path + ": " + i.Reason }

// Result is an imported plan and what did not make it in.
type Result struct {
	Plan *canary.CanaryPlan
	// Dropped lists what was not carried over; the plan is partial unless
	// it is empty.
	Dropped []Item
	// Notes list defaults taken and fields with no canarybot meaning that
	// change nothing (a Prometheus address, maxSurge).
	Notes []Item
	// ThresholdGates counts the threshold gates written.
	ThresholdGates int
}

// converter holds one conversion's inputs and findings.
type converter struct {
	src   *sources
	opts  Options
	res   *Result
	gates *gateSet
	// mode is the plan's traffic mode; mirror tracks its mirror route
	// across steps (routes.go).
	mode   string
	mirror mirrorState
}

func (c *converter) drop(path, format string, args ...any) {
	c.res.Dropped = appendOnce(c.res.Dropped, Item{Path: path, Reason: fmt.Sprintf(format, args...)})
}

func (c *converter) note(path, format string, args ...any) {
	c.res.Notes = appendOnce(c.res.Notes, Item{Path: path, Reason: fmt.Sprintf(format, args...)})
}

// appendOnce appends it unless items has it already: a template used by
// several steps is reported once.
func appendOnce(items []Item, it Item) []Item {
	for _, x := range items {
		if x == it {
			return items
		}
	}
	return append(items, it)
}

// rpath is a path inside the Rollout's file.
func (c *converter) rpath(p string) string { return c.src.rollout.file + ": " + p }

// Convert imports the Rollout in ro with the templates in its own file and
// in tmpls. An error means the input is malformed or the plan cannot be
// built (it names the file and path); what the plan lacks is in
// Result.Dropped.
func Convert(ro Input, tmpls []Input, opts Options) (*Result, error) {
	src, err := load(ro, tmpls)
	if err != nil {
		return nil, err
	}
	c := &converter{src: src, opts: opts, res: &Result{}, gates: newGateSet()}
	canaryRaw, ok := src.rollout.Spec.Strategy["canary"]
	if !ok {
		var kinds []string
		for k := range src.rollout.Spec.Strategy {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		return nil, fmt.Errorf("%s: spec.strategy.canary: is required (found %v); only the canary strategy can be imported", ro.Name, kinds)
	}
	var strat map[string]json.RawMessage
	if err := json.Unmarshal(canaryRaw, &strat); err != nil {
		return nil, fmt.Errorf("%s: spec.strategy.canary: %w", ro.Name, err)
	}
	plan, err := c.plan(strat)
	if err != nil {
		return nil, err
	}
	c.res.Plan = plan
	c.res.ThresholdGates = len(plan.Spec.Gates)
	return c.res, nil
}

// knownStrategy reports whether a canary strategy key is read.
func knownStrategy(k string) bool {
	switch k {
	case "steps", "analysis", "stableService", "canaryService", "trafficRouting":
		return true
	}
	return false
}

// replicaOnly reports whether a canary strategy key is about pods, which canarybot leaves
// to the serving platform: noted, not dropped.
func replicaOnly(k string) bool { return k == "maxSurge" || k == "maxUnavailable" }

func (c *converter) plan(strat map[string]json.RawMessage) (*canary.CanaryPlan, error) {
	name := or(c.opts.Name, c.src.rollout.Metadata.Name)
	p := &canary.CanaryPlan{APIVersion: canary.APIVersion, Kind: canary.KindCanaryPlan, Metadata: canary.ObjectMeta{Name: name}}
	s := &p.Spec
	s.Model = canary.ModelSpec{Name: or(c.opts.Model, name), Source: c.opts.Source}
	s.Overlay = c.opts.Overlay
	s.ArgoCD.Application = or(c.opts.Application, name)
	if c.opts.Application == "" {
		c.note(c.rpath("metadata.name"), "spec.argocd.application taken as %q (the plan's name); set --argocd-application", name)
	}
	for _, k := range sortedKeys(strat) {
		switch {
		case replicaOnly(k):
			c.note(c.rpath("spec.strategy.canary."+k), "pod scaling is the serving platform's; canarybot moves traffic only")
		case !knownStrategy(k):
			c.drop(c.rpath("spec.strategy.canary."+k), "canarybot has no equivalent")
		}
	}
	var err error
	if s.Traffic, err = c.traffic(strat); err != nil {
		return nil, err
	}
	c.mode = s.Traffic.Mode
	if s.Steps, err = c.steps(strat["steps"]); err != nil {
		return nil, err
	}
	if s.BackgroundAnalysis, err = c.background(strat["analysis"]); err != nil {
		return nil, err
	}
	s.Gates = c.gates.specs
	s.Signals = c.opts.Signals
	// Argo Rollouts aborts a rollout whose analysis fails or errors, and
	// pauses it when inconclusive.
	s.Rollback = canary.RollbackPolicy{OnFailure: canary.ActionRevert, OnInconclusive: canary.ActionHold,
		OnError: canary.ActionRevert, OnSyncFailure: canary.ActionRevert}
	return p, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// steps converts spec.strategy.canary.steps.
func (c *converter) steps(raw json.RawMessage) ([]canary.Step, error) {
	var steps []map[string]json.RawMessage
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &steps); err != nil {
			return nil, fmt.Errorf("%s: %w", c.rpath("spec.strategy.canary.steps"), err)
		}
	}
	var out []canary.Step
	last := 0
	for i, st := range steps {
		f := fmt.Sprintf("spec.strategy.canary.steps[%d]", i)
		if len(st) != 1 {
			return nil, fmt.Errorf("%s: a step must have exactly one key, got %v", c.rpath(f), sortedKeys(st))
		}
		for k, v := range st {
			step, err := c.step(f+"."+k, k, v, &last)
			if err != nil {
				return nil, err
			}
			if step != nil {
				out = append(c.endMirrorBefore(out, f+"."+k, *step), *step)
			}
		}
	}
	return out, nil
}

func (c *converter) step(f, key string, v json.RawMessage, last *int) (*canary.Step, error) {
	switch key {
	case "setWeight":
		w, _, err := intOrString(v, func(s string) (string, error) { return s, nil })
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.rpath(f), err)
		}
		if w < *last {
			c.drop(c.rpath(f), "lowers the weight from %d to %d; canarybot's weights only rise", *last, w)
			return nil, nil
		}
		*last = w
		return &canary.Step{SetWeight: &w}, nil
	case "pause":
		return c.pause(f, v)
	case "analysis":
		a, err := c.analysis(f, v, false)
		if err != nil || a == nil {
			return nil, err
		}
		return &canary.Step{Analysis: a}, nil
	case "setHeaderRoute":
		return c.headerRoute(f, v)
	case "setMirrorRoute":
		return c.mirrorRoute(f, v, *last)
	}
	c.drop(c.rpath(f), "canarybot has no %s step", key)
	return nil, nil
}

func (c *converter) pause(f string, v json.RawMessage) (*canary.Step, error) {
	var p struct {
		Duration json.RawMessage `json:"duration"`
	}
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", c.rpath(f), err)
	}
	if len(p.Duration) == 0 || string(p.Duration) == "null" {
		return &canary.Step{Pause: &canary.PauseStep{UntilApproved: true}}, nil
	}
	d, err := pauseDuration(p.Duration)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.rpath(f+".duration"), err)
	}
	if d <= 0 {
		c.note(c.rpath(f), "a pause of %s does nothing; left out", d)
		return nil, nil
	}
	return &canary.Step{Pause: &canary.PauseStep{Duration: canary.D(d)}}, nil
}

// pauseDuration reads Argo's pause duration: seconds as a number or a
// numeric string, else a Go duration such as "1h".
func pauseDuration(raw json.RawMessage) (time.Duration, error) {
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("want seconds or a duration such as \"1h\", got %s", raw)
	}
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("parse duration %q: %w", s, err)
	}
	return d, nil
}
