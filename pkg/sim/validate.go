package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Validate checks ranges, targets and distributions, and that every
// behaviour the scenario can be in resolves. Each problem is reported with
// its field path.
func (sc *Scenario) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(sc.Name) == "" {
		add("name", "is required")
	}
	if r := sc.Traffic.RPS; !(r > 0) || !finite(r) {
		add("traffic.rps", "must be a positive number, got %v", r)
	}
	if d := sc.Traffic.MaxDuration.Duration; d <= 0 {
		add("traffic.maxDuration", "must be positive, got %s", d)
	}
	if h := sc.Traffic.HeaderShare; h != nil && !(*h >= 0 && *h <= 1) {
		add("traffic.headerShare", "must be a fraction in [0, 1], got %v", *h)
	}
	if sc.Expect != OutcomePromote && sc.Expect != OutcomeRevert {
		add("expect", "must be %s or %s, got %q", OutcomePromote, OutcomeRevert, sc.Expect)
	}
	validateBehaviour("stable", sc.Stable, add)
	if sc.Canary != nil {
		validateBehaviour("canary", *sc.Canary, add)
	}
	for i, c := range sc.Changes {
		validateChange(fmt.Sprintf("changes[%d]", i), c, add)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return sc.validateResolves()
}

// validateResolves checks that each side's base behaviour, the base with
// each of its changes, and the base with all its changes can be drawn from.
func (sc *Scenario) validateResolves() error {
	var errs []error
	for _, side := range []string{TargetStable, TargetCanary} {
		base := sc.Stable
		if side == TargetCanary {
			base = sc.CanaryBase()
		}
		if _, err := resolve(base); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", side, err))
			continue
		}
		all := base
		for i, c := range sc.Changes {
			if c.Target != side {
				continue
			}
			all = merge(all, *c.Set)
			if _, err := resolve(merge(base, *c.Set)); err != nil {
				errs = append(errs, fmt.Errorf("changes[%d].set: over the %s behaviour: %w", i, side, err))
			}
		}
		if _, err := resolve(all); err != nil {
			errs = append(errs, fmt.Errorf("changes: all %s changes together: %w", side, err))
		}
	}
	return errors.Join(errs...)
}

type addFunc func(path, format string, args ...any)

func validateChange(f string, c Change, add addFunc) {
	if c.At.Duration < 0 {
		add(f+".at", "must not be negative, got %s", c.At.Duration)
	}
	if c.For != nil && c.For.Duration <= 0 {
		add(f+".for", "must be positive, got %s", c.For.Duration)
	}
	if c.Set == nil {
		add(f+".set", "is required")
		return
	}
	switch c.Target {
	case TargetCanary, TargetStable:
		validateBehaviour(f+".set", *c.Set, add)
	case TargetMetrics:
		if c.Set.Available == nil {
			add(f+".set.available", "is required for target %s", TargetMetrics)
		}
		if other := (*c.Set); other.Available != nil {
			other.Available = nil
			if !reflect.ValueOf(other).IsZero() {
				add(f+".set", "a %s change sets only available", TargetMetrics)
			}
		}
	default:
		add(f+".target", "unknown target %q (want %s)", c.Target, oneOf(TargetCanary, TargetStable, TargetMetrics))
	}
}

// validateBehaviour checks a stable, canary or change block; available
// belongs to metrics changes only, which validateChange checks itself.
func validateBehaviour(f string, b Behaviour, add addFunc) {
	if b.Available != nil {
		add(f+".available", "is only valid in a change with target %s", TargetMetrics)
	}
	unit := func(name string, v *float64) {
		if v != nil && !inUnit(*v) {
			add(f+"."+name, "must be in [0, 1], got %v", *v)
		}
	}
	fin := func(name string, v *float64) {
		if v != nil && !finite(*v) {
			add(f+"."+name, "must be a finite number, got %v", *v)
		}
	}
	unit("errorRate", b.ErrorRate)
	unit("kvCacheUsage", b.KVCacheUsage)
	fin("kvCacheGrowthPerMinute", b.KVCacheGrowthPerMinute)
	if q := b.QueueDepth; q != nil && (!(*q >= 0) || !finite(*q)) {
		add(f+".queueDepth", "must not be negative, got %v", *q)
	}
	validateDistribution(f+".latency", b.Latency, add)
	validateFeedback(f, b.Feedback, add)
	validateDistribution(f+".ttft", b.TTFT, add)
	if g := b.GPU; g != nil {
		unit("gpu.memoryUsedFraction", g.MemoryUsedFraction)
		fin("gpu.memoryGrowthPerMinute", g.MemoryGrowthPerMinute)
		fin("gpu.temperatureC", g.TemperatureC)
		for i, x := range g.Xid {
			if x <= 0 {
				add(fmt.Sprintf("%s.gpu.xid[%d]", f, i), "must be a positive Xid code, got %d", x)
			}
		}
	}
	if p := b.Predictions; p != nil {
		validateWeights(f+".predictions.classes", p.Classes, add)
	}
}

func validateDistribution(f string, d *Distribution, add addFunc) {
	if d == nil {
		return
	}
	if m := d.MedianSeconds; m != nil && (!(*m > 0) || !finite(*m)) {
		add(f+".medianSeconds", "must be positive, got %v", *m)
	}
	if s := d.Sigma; s != nil && (!(*s >= 0) || !finite(*s)) {
		add(f+".sigma", "must not be negative, got %v", *s)
	}
	switch d.Distribution {
	case DistLognormal:
		if len(d.Components) > 0 {
			add(f+".components", "apply only to distribution %s", DistMixture)
		}
	case DistMixture:
		if d.MedianSeconds != nil || d.Sigma != nil {
			add(f, "a %s takes components, not medianSeconds or sigma", DistMixture)
		}
		if len(d.Components) == 0 {
			add(f+".components", "a %s needs at least one component", DistMixture)
		}
		total := 0.0
		for i, c := range d.Components {
			cf := fmt.Sprintf("%s.components[%d]", f, i)
			if !(c.Weight >= 0) || !finite(c.Weight) {
				add(cf+".weight", "must not be negative, got %v", c.Weight)
			}
			if !(c.MedianSeconds > 0) || !finite(c.MedianSeconds) {
				add(cf+".medianSeconds", "must be positive, got %v", c.MedianSeconds)
			}
			if !(c.Sigma >= 0) || !finite(c.Sigma) {
				add(cf+".sigma", "must not be negative, got %v", c.Sigma)
			}
			total += c.Weight
		}
		if len(d.Components) > 0 && !(total > 0) {
			add(f+".components", "weights sum to zero")
		}
	default:
		add(f+".distribution", "unknown distribution %q (want %s)", d.Distribution, oneOf(DistLognormal, DistMixture))
	}
}

func validateWeights(f string, ws []float64, add addFunc) {
	if len(ws) == 0 {
		add(f, "needs at least one class")
		return
	}
	total := 0.0
	for i, w := range ws {
		if !(w >= 0) || !finite(w) {
			add(fmt.Sprintf("%s[%d]", f, i), "must not be negative, got %v", w)
		}
		total += w
	}
	if !(total > 0) {
		add(f, "weights sum to zero")
	}
}

// decodeStrict is canary.DecodeStrict, with a clear error for a file that
// is not a mapping at all.
func decodeStrict(data []byte, out any) error {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	var generic any
	if err := json.Unmarshal(j, &generic); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if m, ok := generic.(map[string]any); !ok || len(m) == 0 {
		return errors.New("decode: want a YAML mapping with name, traffic, stable, canary and expect")
	}
	return canary.DecodeStrict(data, out)
}
