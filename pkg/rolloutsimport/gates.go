package rolloutsimport

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
)

// gateSet collects the plan's gates: one per distinct threshold, named
// after its metric.
type gateSet struct {
	specs []canary.GateSpec
	byKey map[string]string
	names map[string]bool
}

func newGateSet() *gateSet { return &gateSet{byKey: map[string]string{}, names: map[string]bool{}} }

var notLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// add returns the name of the gate for t, adding it when new.
func (s *gateSet) add(metric string, t *canary.ThresholdGate) string {
	b, _ := json.Marshal(t) // a ThresholdGate always marshals
	if n, ok := s.byKey[string(b)]; ok {
		return n
	}
	base := strings.Trim(notLabel.ReplaceAllString(strings.ToLower(metric), "-"), "-")
	base = strings.TrimRight(base[:min(len(base), 56)], "-")
	if base == "" {
		base = "metric"
	}
	name := base
	for i := 2; s.names[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	s.names[name], s.byKey[string(b)] = true, name
	s.specs = append(s.specs, canary.GateSpec{Name: name, Type: canary.GateThreshold, Threshold: t})
	return name
}

// knownMetric reports whether a metric key is read.
func knownMetric(k string) bool {
	switch k {
	case "name", "interval", "initialDelay", "count", "failureLimit", "inconclusiveLimit",
		"consecutiveErrorLimit", "successCondition", "failureCondition", "provider":
		return true
	}
	return false
}

// templateGates turns each metric of t, instantiated with args, into a
// gate and returns their names.
func (c *converter) templateGates(t *template, args argValues) ([]string, error) {
	tp := t.file + ": " + t.label() + ": "
	if len(t.Spec.DryRun) > 0 {
		c.drop(tp+"spec.dryRun", "canarybot has no dry-run metrics")
	}
	if len(t.Spec.Retain) > 0 {
		c.drop(tp+"spec.measurementRetention", "canarybot keeps the measurements of the current window")
	}
	var names []string
	for i, m := range t.Spec.Metrics {
		mp := fmt.Sprintf("%smetrics[%d]", tp, i)
		name, _, _ := str(m["name"])
		th, err := c.metric(mp, m, args)
		if errors.Is(err, errUnresolved) {
			sub, reason, _ := strings.Cut(strings.TrimPrefix(err.Error(), mp), ": ")
			c.drop(mp+sub, "%s; metric %q left out", reason, name)
			continue
		}
		if err != nil {
			return nil, err
		}
		if th != nil {
			names = append(names, c.gates.add(name, th))
		}
	}
	return names, nil
}

// resultIndex is Argo's usual `result[0]`: canarybot's result is already
// the single value of a one-series query.
var resultIndex = regexp.MustCompile(`result\s*\[\s*0\s*\]`)

// metric converts one metric at path mp; nil (with the reason dropped)
// when it cannot be carried over.
func (c *converter) metric(mp string, m map[string]json.RawMessage, args argValues) (*canary.ThresholdGate, error) {
	for _, k := range sortedKeys(m) {
		if !knownMetric(k) {
			c.drop(mp+"."+k, "canarybot's threshold gates have no %s", k)
		}
	}
	query, err := c.promQuery(mp, m["provider"], args)
	if err != nil || query == "" {
		return nil, err
	}
	t := &canary.ThresholdGate{Query: query}
	for _, f := range []struct {
		key string
		out *string
	}{{"successCondition", &t.SuccessCondition}, {"failureCondition", &t.FailureCondition}} {
		s, _, err := str(m[f.key])
		if err == nil {
			s, err = args.subst(resultIndex.ReplaceAllString(s, "result"))
		}
		if err != nil {
			return nil, wrapAt(mp+"."+f.key, err)
		}
		if s != "" && c.opts.CheckCondition != nil {
			if cerr := c.opts.CheckCondition(s); cerr != nil {
				first, _, _ := strings.Cut(cerr.Error(), "\n")
				c.drop(mp+"."+f.key, "canarybot evaluates a condition over the single value `result`: %s; metric left out", first)
				return nil, nil
			}
		}
		*f.out = s
	}
	if t.SuccessCondition == "" && t.FailureCondition == "" {
		c.drop(mp, "no successCondition or failureCondition (canarybot needs one)")
		return nil, nil
	}
	if err := c.timing(mp, m, args, t); err != nil {
		return nil, err
	}
	return t, nil
}

func wrapAt(path string, err error) error { return fmt.Errorf("%s: %w", path, err) }

// promQuery reads provider.prometheus.query; another provider is dropped.
func (c *converter) promQuery(mp string, raw json.RawMessage, args argValues) (string, error) {
	var prov map[string]map[string]json.RawMessage
	if err := json.Unmarshal(raw, &prov); err != nil || len(prov) == 0 {
		return "", fmt.Errorf("%s.provider: want one provider object, got %s", mp, string(raw))
	}
	for _, k := range sortedKeys(prov) {
		if k != "prometheus" {
			c.drop(mp+".provider."+k, "only the prometheus provider maps to a canarybot threshold gate")
		}
	}
	p, ok := prov["prometheus"]
	if !ok {
		return "", nil
	}
	for _, k := range sortedKeys(p) {
		switch k {
		case "query":
		case "address", "timeout":
			c.note(mp+".provider.prometheus."+k, "canarybot queries the Prometheus, with the timeout, given to the bot (--prometheus)")
		default:
			c.drop(mp+".provider.prometheus."+k, "canarybot's Prometheus client is configured on the bot, not per gate")
		}
	}
	q, _, err := str(p["query"])
	if err == nil {
		q, err = args.subst(q)
	}
	if err != nil {
		return "", wrapAt(mp+".provider.prometheus.query", err)
	}
	if strings.TrimSpace(q) == "" {
		return "", fmt.Errorf("%s.provider.prometheus.query: is required", mp)
	}
	return strings.TrimSpace(q) + "\n", nil
}
