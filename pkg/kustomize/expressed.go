package kustomize

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/kio"
)

// API groups and kinds the bot reads and patches.
const (
	GroupKServe      = "serving.kserve.io"
	KindISVC         = "InferenceService"
	GroupGatewayAPI  = "gateway.networking.k8s.io"
	KindHTTPRoute    = "HTTPRoute"
	defaultRefWeight = 1
)

// Expressed is what a built overlay actually expresses about traffic: each
// InferenceService's model location and canary percentage, each
// HTTPRoute's backend weights, and each LLMInferenceService's model URI
// and inline route. Objects are keyed by name.
type Expressed struct {
	InferenceServices    map[string]InferenceService
	HTTPRoutes           map[string]HTTPRoute
	LLMInferenceServices map[string]LLMInferenceService
}

// InferenceService is the traffic-relevant part of a KServe InferenceService.
type InferenceService struct {
	APIVersion string
	Namespace  string
	// StorageURIPath is the JSON pointer of the predictor's storageUri:
	// /spec/predictor/model/storageUri when spec.predictor.model exists,
	// else the single framework key under spec.predictor that has one
	// (e.g. /spec/predictor/sklearn/storageUri). It is "" when neither rule
	// finds exactly one, and StorageURIError says why.
	StorageURIPath  string
	StorageURIError string
	StorageURI      string
	// CanaryTrafficPercent is spec.predictor.canaryTrafficPercent, nil when unset.
	CanaryTrafficPercent *int
}

// HTTPRoute is the traffic-relevant part of a Gateway API HTTPRoute.
type HTTPRoute struct {
	APIVersion string
	Namespace  string
	Rules      []RouteRule
	// Weights maps each backend name to its weight in the first rule that
	// names it.
	Weights map[string]int
	// Raw is the whole object as JSON, for the bot's header and mirror
	// routes, which copy parts of a rule (routes.go).
	Raw json.RawMessage
}

// RouteRule is one HTTPRoute rule's backends, in order.
type RouteRule struct {
	BackendRefs []BackendRef
}

// BackendRef is one backendRefs entry.
type BackendRef struct {
	Name string
	// Weight is the effective weight: the Gateway API default of 1 when
	// unset.
	Weight int
	// WeightSet reports whether weight is written in the object.
	WeightSet bool
}

// Index returns the position of the backend named name in the rule, or -1.
// It fails when the name appears more than once.
func (r RouteRule) Index(name string) (int, error) {
	idx := -1
	for i, b := range r.BackendRefs {
		if b.Name != name {
			continue
		}
		if idx >= 0 {
			return -1, fmt.Errorf("backend %s appears at both %d and %d", name, idx, i)
		}
		idx = i
	}
	return idx, nil
}

// Parse reads a YAML stream produced by Build and returns what it expresses.
// Objects other than InferenceServices, HTTPRoutes and
// LLMInferenceServices are ignored. Two
// objects of the same kind and name are an error: names alone must identify
// the objects the bot patches.
func Parse(out []byte) (*Expressed, error) {
	nodes, err := kio.FromBytes(out)
	if err != nil {
		return nil, fmt.Errorf("parse build output: %w", err)
	}
	e := &Expressed{
		InferenceServices:    map[string]InferenceService{},
		HTTPRoutes:           map[string]HTTPRoute{},
		LLMInferenceServices: map[string]LLMInferenceService{},
	}
	for _, n := range nodes {
		group, _, _ := strings.Cut(n.GetApiVersion(), "/")
		kind, name := n.GetKind(), n.GetName()
		llm := group == GroupKServe && kind == KindLLMISVC
		if !(group == GroupKServe && kind == KindISVC) && !(group == GroupGatewayAPI && kind == KindHTTPRoute) && !llm {
			continue
		}
		raw, err := n.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", kind, name, err)
		}
		switch {
		case llm:
			err = e.addLLMISVC(name, n.GetApiVersion(), n.GetNamespace(), raw)
		case kind == KindISVC:
			err = e.addISVC(name, n.GetApiVersion(), n.GetNamespace(), raw)
		default:
			err = e.addRoute(name, n.GetApiVersion(), n.GetNamespace(), raw)
		}
		if err != nil {
			return nil, err
		}
	}
	return e, nil
}

// isvcDoc is the part of an InferenceService Parse decodes.
type isvcDoc struct {
	Spec struct {
		Predictor map[string]json.RawMessage `json:"predictor"`
	} `json:"spec"`
}

func (e *Expressed) addISVC(name, apiVersion, namespace string, raw []byte) error {
	if _, dup := e.InferenceServices[name]; dup {
		return fmt.Errorf("parse build output: two %ss named %s", KindISVC, name)
	}
	var doc isvcDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("decode %s %s: %w", KindISVC, name, err)
	}
	s := InferenceService{APIVersion: apiVersion, Namespace: namespace}
	pred := doc.Spec.Predictor
	if ctp, ok := pred["canaryTrafficPercent"]; ok {
		var v int
		if err := json.Unmarshal(ctp, &v); err != nil {
			return fmt.Errorf("decode %s %s canaryTrafficPercent: %w", KindISVC, name, err)
		}
		s.CanaryTrafficPercent = &v
	}
	key, uri, why := storageURI(pred)
	if key == "" {
		s.StorageURIError = why
	} else {
		s.StorageURIPath = "/spec/predictor/" + escapePointer(key) + "/storageUri"
		s.StorageURI = uri
	}
	e.InferenceServices[name] = s
	return nil
}

// storageURI finds the predictor key that holds the storageUri: "model"
// when present, else the only key whose object has a storageUri. It returns
// the key and URI, or "" and the reason none was chosen.
func storageURI(pred map[string]json.RawMessage) (key, uri, why string) {
	type holder struct {
		StorageURI *string `json:"storageUri"`
	}
	get := func(k string) (string, bool) {
		var h holder
		if json.Unmarshal(pred[k], &h) != nil || h.StorageURI == nil {
			return "", false
		}
		return *h.StorageURI, true
	}
	if _, ok := pred["model"]; ok {
		if u, ok := get("model"); ok {
			return "model", u, ""
		}
		return "", "", "spec.predictor.model has no storageUri"
	}
	var keys []string
	for k := range pred {
		if _, ok := get(k); ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	switch len(keys) {
	case 0:
		return "", "", "no spec.predictor.model and no framework key under spec.predictor with a storageUri"
	case 1:
		u, _ := get(keys[0])
		return keys[0], u, ""
	default:
		return "", "", "several keys under spec.predictor have a storageUri: " + strings.Join(keys, ", ")
	}
}

// routeDoc is the part of an HTTPRoute Parse decodes.
type routeDoc struct {
	Spec struct {
		Rules []ruleDoc `json:"rules"`
	} `json:"spec"`
}

func (e *Expressed) addRoute(name, apiVersion, namespace string, raw []byte) error {
	if _, dup := e.HTTPRoutes[name]; dup {
		return fmt.Errorf("parse build output: two %ss named %s", KindHTTPRoute, name)
	}
	var doc routeDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("decode %s %s: %w", KindHTTPRoute, name, err)
	}
	r := HTTPRoute{APIVersion: apiVersion, Namespace: namespace, Weights: map[string]int{}, Rules: routeRules(doc.Spec.Rules)}
	for _, rule := range r.Rules {
		for _, ref := range rule.BackendRefs {
			if _, seen := r.Weights[ref.Name]; !seen {
				r.Weights[ref.Name] = ref.Weight
			}
		}
	}
	r.Raw = raw
	e.HTTPRoutes[name] = r
	return nil
}

// escapePointer escapes one JSON pointer token (RFC 6901).
func escapePointer(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}
