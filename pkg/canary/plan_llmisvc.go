package canary

import "fmt"

// LLMISVCTraffic splits traffic between two KServe LLMInferenceServices
// (serving.kserve.io, checked against KServe v0.19.0's CRD, API versions
// v1alpha1 and v1alpha2), a stable and a canary member, each serving its
// own spec.model.uri.
//
// KServe has no weight field on an LLMInferenceService. Its router exposes
// the model through a Gateway API HTTPRoute, given inline as
// spec.router.route.http.spec (an HTTPRouteSpec the controller copies into
// the HTTPRoute it manages). The members are grouped by that route: every
// rule of the Router's inline route that lists both members' backends
// (each member's InferencePool, <name>-inference-pool, or its workload
// Service) carries the split in its backendRefs weights.
type LLMISVCTraffic struct {
	// Router is the LLMInferenceService whose spec.router.route.http.spec
	// holds the rules that list both members' backends: usually the stable
	// member; it may be the canary member or a third one.
	Router string `json:"router"`
	// Stable and Canary are the two members.
	Stable LLMISVCMember `json:"stable"`
	Canary LLMISVCMember `json:"canary"`
}

// LLMISVCMember is one side of an llmisvc split.
type LLMISVCMember struct {
	// Name is the LLMInferenceService whose spec.model.uri the bot sets.
	Name string `json:"name"`
	// Backend is the backendRefs name that routes to this member in the
	// Router's rules, e.g. qwen-stable-inference-pool.
	Backend string `json:"backend"`
}

// validateLLMISVCTraffic checks spec.traffic in mode llmisvc.
func validateLLMISVCTraffic(t TrafficSpec, add addFunc) {
	if t.KServe != nil {
		add("spec.traffic.kserve", "must be empty in mode %q", ModeLLMISVC)
	}
	if t.Gateway != nil {
		add("spec.traffic.gateway", "must be empty in mode %q", ModeLLMISVC)
	}
	l := t.LLMISVC
	if l == nil {
		add("spec.traffic.llmisvc", "is required in mode %q", ModeLLMISVC)
		return
	}
	if !validName(l.Router) {
		add("spec.traffic.llmisvc.router", "must be a DNS label naming an LLMInferenceService, got %q", l.Router)
	}
	for _, m := range []struct {
		side string
		m    LLMISVCMember
	}{{"stable", l.Stable}, {"canary", l.Canary}} {
		if !validName(m.m.Name) {
			add(fmt.Sprintf("spec.traffic.llmisvc.%s.name", m.side), "must be a DNS label, got %q", m.m.Name)
		}
		if !validName(m.m.Backend) {
			add(fmt.Sprintf("spec.traffic.llmisvc.%s.backend", m.side), "must be a DNS label, got %q", m.m.Backend)
		}
	}
	if l.Stable.Name != "" && l.Stable.Name == l.Canary.Name {
		add("spec.traffic.llmisvc.canary.name", "must differ from the stable one %q", l.Stable.Name)
	}
	if l.Stable.Backend != "" && l.Stable.Backend == l.Canary.Backend {
		add("spec.traffic.llmisvc.canary.backend", "must differ from the stable backend %q", l.Stable.Backend)
	}
}
