package kustomize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Gateway API's bounds (v1.3.0 CRDs) that the bot's routes must respect.
const (
	maxRouteRules  = 16
	maxRuleMatches = 64
	maxRouteMatch  = 128
)

// filterRequestMirror is Gateway API's RequestMirror filter type.
const filterRequestMirror = "RequestMirror"

// addCanaryRoutes adds the bot-owned routes r to the HTTPRoute's patch,
// for every user-facing rule (one that lists both backends, as addRoute
// found them):
//   - each header route appends a rule that copies the user-facing rule
//     (its filters and timeouts too) with the header route's headers added
//     to each of its matches and the canary as its only backend, so that
//     Gateway API's precedence (more header matches win at the same path)
//     sends the matching requests to the canary;
//   - a mirror adds a RequestMirror filter, to the canary with percent,
//     to the user-facing rule, whose canary weight must be 0.
//
// Each addition is checked in the verification build.
func (c *component) addCanaryRoutes(e *Expressed, g *canary.GatewayTraffic, r canary.Routes, weight int) error {
	if r.IsZero() {
		return nil
	}
	name := g.HTTPRoute
	if r.MirrorPercent > 0 && weight > 0 {
		return canary.Terminalf("%s %s: a mirror route needs the canary's weight at 0, got %d", KindHTTPRoute, name, weight)
	}
	route := e.HTTPRoutes[name]
	rules, err := decodeRules(route.Raw)
	if err != nil {
		return canary.Terminalf("%s %s: %w", KindHTTPRoute, name, err)
	}
	pi := slices.IndexFunc(c.patches, func(p patchFile) bool { return p.Kind == KindHTTPRoute && p.ObjectName == name })
	if pi < 0 || len(rules) != len(route.Rules) {
		return canary.Terminalf("%s %s: no weight patch to add routes to", KindHTTPRoute, name)
	}
	p := &c.patches[pi]
	var facing, canaryAt []int
	for ri, rule := range route.Rules {
		idx, err := ruleIndices(rule, []string{g.Stable.Service, g.Canary.Service})
		if err == nil && idx != nil {
			facing, canaryAt = append(facing, ri), append(canaryAt, idx[1])
		}
	}
	if r.MirrorPercent > 0 {
		for k, ri := range facing {
			c.addMirror(p, name, ri, rules[ri], canaryAt[k], g.Canary.Service, r.MirrorPercent)
		}
	}
	at, total := len(rules), countMatches(rules)
	for _, h := range r.Headers {
		for k, ri := range facing {
			rule, err := headerRule(rules[ri], canaryAt[k], h)
			if err != nil {
				return canary.Terminalf("%s %s rule %d: header route %s: %w", KindHTTPRoute, name, ri, h.Name, err)
			}
			total += len(rule["matches"].([]any))
			c.addRule(p, name, at, rule, "header route "+h.Name)
			at++
		}
	}
	switch {
	case at > maxRouteRules:
		return canary.Terminalf("%s %s: its header routes would make %d rules; Gateway API allows %d", KindHTTPRoute, name, at, maxRouteRules)
	case total > maxRouteMatch:
		return canary.Terminalf("%s %s: its header routes would make %d matches; Gateway API allows %d", KindHTTPRoute, name, total, maxRouteMatch)
	}
	return nil
}

// decodeRules reads an HTTPRoute's rules as generic JSON, numbers kept as
// written.
func decodeRules(raw json.RawMessage) ([]map[string]any, error) {
	var doc struct {
		Spec struct {
			Rules []map[string]any `json:"rules"`
		} `json:"spec"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode rules: %w", err)
	}
	return doc.Spec.Rules, nil
}

func countMatches(rules []map[string]any) int {
	n := 0
	for _, r := range rules {
		m, _ := r["matches"].([]any)
		n += max(len(m), 1)
	}
	return n
}

// canaryRef is the rule's canary backendRef without its weight: where
// header routes and mirrors send requests.
func canaryRef(rule map[string]any, at int) (map[string]any, error) {
	refs, _ := rule["backendRefs"].([]any)
	if at >= len(refs) {
		return nil, fmt.Errorf("no backendRef at %d", at)
	}
	ref, ok := refs[at].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("backendRef %d is not an object", at)
	}
	ref = maps.Clone(ref)
	delete(ref, "weight")
	return ref, nil
}

// headerRule is the rule a header route adds beside a user-facing rule.
// A rule name is not copied: names must be unique within a route.
func headerRule(rule map[string]any, canaryAt int, h canary.HeaderRoute) (map[string]any, error) {
	ref, err := canaryRef(rule, canaryAt)
	if err != nil {
		return nil, err
	}
	matches, err := headerMatches(rule, h)
	if err != nil {
		return nil, err
	}
	out := maps.Clone(rule)
	delete(out, "name")
	out["matches"] = matches
	out["backendRefs"] = []any{ref}
	return out, nil
}

// headerMatches adds each alternative of h to each of the rule's matches
// (a rule without matches matches every path).
func headerMatches(rule map[string]any, h canary.HeaderRoute) ([]any, error) {
	base, _ := rule["matches"].([]any)
	if len(base) == 0 {
		base = []any{map[string]any{}}
	}
	var out []any
	for mi, m := range base {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("match %d is not an object", mi)
		}
		have, _ := mm["headers"].([]any)
		for _, alt := range h.Match {
			headers := slices.Clone(have)
			for _, hm := range alt.Headers {
				if hasHeader(have, hm.Name) {
					return nil, fmt.Errorf("match %d already matches header %s", mi, hm.Name)
				}
				typ := hm.Type
				if typ == "" {
					typ = canary.HeaderMatchExact
				}
				headers = append(headers, map[string]any{"type": typ, "name": hm.Name, "value": hm.Value})
			}
			nm := maps.Clone(mm)
			nm["headers"] = headers
			out = append(out, nm)
		}
	}
	if len(out) > maxRuleMatches {
		return nil, fmt.Errorf("%d matches; Gateway API allows %d per rule", len(out), maxRuleMatches)
	}
	return out, nil
}

func hasHeader(headers []any, name string) bool {
	for _, h := range headers {
		if m, ok := h.(map[string]any); ok {
			if n, _ := m["name"].(string); strings.EqualFold(n, name) {
				return true
			}
		}
	}
	return false
}

// addRule appends rule to the route and checks that the build carries it
// at index at.
func (c *component) addRule(p *patchFile, route string, at int, rule map[string]any, what string) {
	p.Ops = append(p.Ops, patchOp{Op: "add", Path: "/spec/rules/-", Value: rule})
	want, err := json.Marshal(rule)
	if err != nil {
		want = []byte(err.Error())
	}
	c.checks = append(c.checks, check{
		What: fmt.Sprintf("%s %s rule %d (%s)", KindHTTPRoute, route, at, what),
		Want: string(want),
		Got: func(x *Expressed) string {
			rules, err := decodeRules(x.HTTPRoutes[route].Raw)
			if err != nil || at >= len(rules) {
				return "<no rule>"
			}
			b, err := json.Marshal(rules[at])
			if err != nil {
				return err.Error()
			}
			return string(b)
		},
	})
}

// addMirror adds a RequestMirror filter to the canary to user-facing rule
// ri, and checks its percent in the build.
func (c *component) addMirror(p *patchFile, route string, ri int, rule map[string]any, canaryAt int, backend string, percent int) {
	ref, err := canaryRef(rule, canaryAt)
	if err != nil { // addRoute found the backend at canaryAt
		ref = map[string]any{"name": backend}
	}
	filter := map[string]any{"type": filterRequestMirror, "requestMirror": map[string]any{"backendRef": ref, "percent": percent}}
	base := fmt.Sprintf("/spec/rules/%d/filters", ri)
	if _, ok := rule["filters"]; ok {
		p.Ops = append(p.Ops, patchOp{Op: "add", Path: base + "/-", Value: filter})
	} else {
		p.Ops = append(p.Ops, patchOp{Op: "add", Path: base, Value: []any{filter}})
	}
	c.checks = append(c.checks, check{
		What: fmt.Sprintf("%s %s rule %d mirror to %s percent", KindHTTPRoute, route, ri, backend),
		Want: strconv.Itoa(percent),
		Got:  func(x *Expressed) string { return mirrorPercent(x.HTTPRoutes[route].Raw, ri, backend) },
	})
}

// mirrorPercent is the percent of the last RequestMirror filter to backend
// in rule ri, or why there is none.
func mirrorPercent(raw json.RawMessage, ri int, backend string) string {
	rules, err := decodeRules(raw)
	if err != nil || ri >= len(rules) {
		return "<no rule>"
	}
	got := "<no mirror>"
	filters, _ := rules[ri]["filters"].([]any)
	for _, f := range filters {
		var m struct {
			Type          string `json:"type"`
			RequestMirror *struct {
				BackendRef struct {
					Name string `json:"name"`
				} `json:"backendRef"`
				Percent *int `json:"percent"`
			} `json:"requestMirror"`
		}
		b, _ := json.Marshal(f)
		if json.Unmarshal(b, &m) != nil || m.Type != filterRequestMirror || m.RequestMirror == nil ||
			m.RequestMirror.BackendRef.Name != backend {
			continue
		}
		got = "<no percent>"
		if m.RequestMirror.Percent != nil {
			got = strconv.Itoa(*m.RequestMirror.Percent)
		}
	}
	return got
}
