package kustomize

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
)

// KindLLMISVC is KServe's LLMInferenceService (group serving.kserve.io;
// field names checked against the CRD of KServe v0.19.0).
const KindLLMISVC = "LLMInferenceService"

// Where an LLMInferenceService keeps what the bot patches.
const (
	llmModelURIPath = "/spec/model/uri"
	llmRulesPath    = "/spec/router/route/http/spec/rules"
)

// LLMInferenceService is the traffic-relevant part of a KServe
// LLMInferenceService: its model URI and the backends of the rules of its
// inline route (spec.router.route.http.spec).
type LLMInferenceService struct {
	APIVersion string
	Namespace  string
	// ModelURI is spec.model.uri; HasModelURI reports whether it is set.
	ModelURI    string
	HasModelURI bool
	// Rules are spec.router.route.http.spec.rules, in order.
	Rules []RouteRule
	// RouteRefs reports whether the route is a user-managed HTTPRoute
	// (spec.router.route.http.refs) rather than an inline spec.
	RouteRefs bool
}

// llmisvcDoc is the part of an LLMInferenceService Parse decodes.
type llmisvcDoc struct {
	Spec struct {
		Model struct {
			URI *string `json:"uri"`
		} `json:"model"`
		Router *struct {
			Route *struct {
				HTTP *struct {
					Refs []json.RawMessage `json:"refs"`
					Spec *struct {
						Rules []ruleDoc `json:"rules"`
					} `json:"spec"`
				} `json:"http"`
			} `json:"route"`
		} `json:"router"`
	} `json:"spec"`
}

// ruleDoc is one Gateway API HTTPRouteRule's backends.
type ruleDoc struct {
	BackendRefs []struct {
		Name   string `json:"name"`
		Weight *int   `json:"weight"`
	} `json:"backendRefs"`
}

// routeRules converts decoded rules, applying Gateway API's default weight.
func routeRules(docs []ruleDoc) []RouteRule {
	var rules []RouteRule
	for _, rule := range docs {
		var rr RouteRule
		for _, b := range rule.BackendRefs {
			ref := BackendRef{Name: b.Name, Weight: defaultRefWeight}
			if b.Weight != nil {
				ref.Weight, ref.WeightSet = *b.Weight, true
			}
			rr.BackendRefs = append(rr.BackendRefs, ref)
		}
		rules = append(rules, rr)
	}
	return rules
}

func (e *Expressed) addLLMISVC(name, apiVersion, namespace string, raw []byte) error {
	if _, dup := e.LLMInferenceServices[name]; dup {
		return fmt.Errorf("parse build output: two %ss named %s", KindLLMISVC, name)
	}
	var doc llmisvcDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("decode %s %s: %w", KindLLMISVC, name, err)
	}
	s := LLMInferenceService{APIVersion: apiVersion, Namespace: namespace}
	if u := doc.Spec.Model.URI; u != nil {
		s.ModelURI, s.HasModelURI = *u, true
	}
	if r := doc.Spec.Router; r != nil && r.Route != nil && r.Route.HTTP != nil {
		s.RouteRefs = len(r.Route.HTTP.Refs) > 0
		if r.Route.HTTP.Spec != nil {
			s.Rules = routeRules(r.Route.HTTP.Spec.Rules)
		}
	}
	e.LLMInferenceServices[name] = s
	return nil
}

// Weight returns the weight of backend in the first rule that lists it.
func (s LLMInferenceService) Weight(backend string) (int, bool) {
	for _, r := range s.Rules {
		if i, err := r.Index(backend); err == nil && i >= 0 {
			return r.BackendRefs[i].Weight, true
		}
	}
	return 0, false
}

// checkLLMISVCTraffic refuses an incomplete llmisvc spec (Validate does the
// same with field paths; this guards callers that skip it).
func checkLLMISVCTraffic(l *canary.LLMISVCTraffic) error {
	if l == nil || l.Router == "" || l.Stable.Name == "" || l.Stable.Backend == "" ||
		l.Canary.Name == "" || l.Canary.Backend == "" {
		return invalidPlan("traffic mode %s needs traffic.llmisvc.router and stable/canary name and backend", canary.ModeLLMISVC)
	}
	if l.Stable.Name == l.Canary.Name || l.Stable.Backend == l.Canary.Backend {
		return invalidPlan("traffic.llmisvc stable and canary must name different LLMInferenceServices and backends")
	}
	return nil
}

// llmisvcComponent points each member at its artifact (spec.model.uri) and
// splits the weights of the Router's rules that list both backends. With
// no canary, the canary member mirrors stable at weight 0.
func llmisvcComponent(e *Expressed, l *canary.LLMISVCTraffic, d canary.Desired) (*component, error) {
	if err := checkLLMISVCTraffic(l); err != nil {
		return nil, err
	}
	if d.Routes != nil && !d.Routes.IsZero() {
		return nil, invalidPlan("header and mirror routes need traffic mode %s, not %s", canary.ModeGateway, canary.ModeLLMISVC)
	}
	canaryURI := d.Canary
	if canaryURI == "" {
		canaryURI = d.Stable
	}
	c := &component{}
	files := map[string]*patchFile{}
	for _, m := range []struct {
		name, uri string
	}{{l.Stable.Name, d.Stable}, {l.Canary.Name, canaryURI}} {
		p, err := llmPatch(e, files, m.name)
		if err != nil {
			return nil, err
		}
		if !e.LLMInferenceServices[m.name].HasModelURI {
			return nil, canary.Terminalf("%s %s has no spec.model.uri", KindLLMISVC, m.name)
		}
		c.addModelURI(p, m.name, m.uri)
	}
	p, err := llmPatch(e, files, l.Router)
	if err != nil {
		return nil, err
	}
	backends := []string{l.Stable.Backend, l.Canary.Backend}
	weights := map[string]int{l.Stable.Backend: 100 - d.CanaryWeight, l.Canary.Backend: d.CanaryWeight}
	if err := c.addLLMWeights(e.LLMInferenceServices[l.Router], p, l.Router, backends, weights); err != nil {
		return nil, err
	}
	for _, name := range []string{l.Stable.Name, l.Canary.Name, l.Router} {
		if f, ok := files[name]; ok {
			c.patches = append(c.patches, *f)
			delete(files, name)
		}
	}
	return c, nil
}

// llmPatch returns the patch file of the named LLMInferenceService,
// starting it on first use.
func llmPatch(e *Expressed, files map[string]*patchFile, name string) (*patchFile, error) {
	if p, ok := files[name]; ok {
		return p, nil
	}
	s, ok := e.LLMInferenceServices[name]
	if !ok {
		return nil, canary.Terminalf("overlay has no %s named %s", KindLLMISVC, name)
	}
	p, err := newPatchFile(KindLLMISVC, name, s.APIVersion)
	if err != nil {
		return nil, err
	}
	files[name] = p
	return p, nil
}

// addModelURI sets spec.model.uri, which KServe's CRD requires, so the
// path is always there to replace.
func (c *component) addModelURI(p *patchFile, name, uri string) {
	p.Ops = append(p.Ops, patchOp{Op: "replace", Path: llmModelURIPath, Value: uri})
	c.checks = append(c.checks, check{
		What: fmt.Sprintf("%s %s spec.model.uri", KindLLMISVC, name),
		Want: uri,
		Got: func(x *Expressed) string {
			s, ok := x.LLMInferenceServices[name]
			if !ok || !s.HasModelURI {
				return "<unset>"
			}
			return s.ModelURI
		},
	})
}

// addLLMWeights sets the backends' weights in every rule of the Router's
// inline route that lists all of them, each guarded by a test of the
// backend name at the index found (as for an HTTPRoute).
func (c *component) addLLMWeights(s LLMInferenceService, p *patchFile, name string, backends []string, weights map[string]int) error {
	if s.RouteRefs && len(s.Rules) == 0 {
		return canary.Terminalf("%s %s routes through a user-managed HTTPRoute (spec.router.route.http.refs); split that route with traffic mode %s",
			KindLLMISVC, name, canary.ModeGateway)
	}
	at := rulesAt{kind: KindLLMISVC, name: name, path: llmRulesPath,
		rules: func(x *Expressed) []RouteRule { return x.LLMInferenceServices[name].Rules }}
	found := false
	for ri, rule := range s.Rules {
		idx, err := ruleIndices(rule, backends)
		if err != nil {
			return canary.Terminalf("%s %s spec.router.route.http.spec.rules[%d]: %w", KindLLMISVC, name, ri, err)
		}
		if idx == nil {
			continue
		}
		found = true
		for bi, b := range backends {
			c.addWeight(p, at, ri, idx[bi], rule.BackendRefs[idx[bi]], b, weights[b])
		}
	}
	if !found {
		return canary.Terminalf("%s %s has no rule in spec.router.route.http.spec listing all of the backends %s",
			KindLLMISVC, name, strings.Join(backends, ", "))
	}
	return nil
}

// llmisvcStable is the model URI the stable member serves.
func llmisvcStable(e *Expressed, overlay string, l *canary.LLMISVCTraffic) (canary.Artifact, error) {
	s, ok := e.LLMInferenceServices[l.Stable.Name]
	if !ok {
		return canary.Artifact{}, canary.Terminalf("overlay %s has no %s %q", overlay, KindLLMISVC, l.Stable.Name)
	}
	if !s.HasModelURI || s.ModelURI == "" {
		return canary.Artifact{}, canary.Terminalf("%s %s in %s has no spec.model.uri", KindLLMISVC, l.Stable.Name, overlay)
	}
	return canary.Artifact{URI: s.ModelURI}, nil
}
