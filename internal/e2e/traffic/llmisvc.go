package traffic

import (
	"bytes"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/canarybot/canarybot/internal/e2e/kservesim"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/kustomize"
)

// LLMISVCGVR is the KServe LLMInferenceService resource llmisvc mode reads
// (v1alpha2, the storage version of KServe v0.19.0's CRD).
func LLMISVCGVR() schema.GroupVersionResource { return kservesim.LLMISVCGVR() }

// llmisvcSplit reads the Router and both members and returns their split.
func llmisvcSplit(l *canary.LLMISVCTraffic, get getter) (Split, error) {
	var objs []*unstructured.Unstructured
	seen := map[string]bool{}
	for _, name := range []string{l.Router, l.Stable.Name, l.Canary.Name} {
		if seen[name] {
			continue
		}
		seen[name] = true
		o, err := get(LLMISVCGVR(), name)
		if err != nil {
			return Split{}, err
		}
		objs = append(objs, o)
	}
	return LLMISVCSplit(l, objs...)
}

// LLMISVCSplit is the split that the LLMInferenceServices objs (the Router
// and both members) express for l: each member's model is its
// spec.model.uri, and the shares are the two backends' weights in the
// first rule of the Router's inline route that lists both. It reads them
// as kustomize.Parse does, so that it agrees with what the bot renders.
func LLMISVCSplit(l *canary.LLMISVCTraffic, objs ...*unstructured.Unstructured) (Split, error) {
	var stream bytes.Buffer
	for _, o := range objs {
		doc, err := yaml.Marshal(o.Object)
		if err != nil {
			return Split{}, fmt.Errorf("encode %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		stream.WriteString("---\n")
		stream.Write(doc)
	}
	ex, err := kustomize.Parse(stream.Bytes())
	if err != nil {
		return Split{}, fmt.Errorf("read llmisvc split: %w", err)
	}
	var uris [2]string
	for i, name := range []string{l.Stable.Name, l.Canary.Name} {
		s, ok := ex.LLMInferenceServices[name]
		if !ok || !s.HasModelURI {
			return Split{}, fmt.Errorf("read llmisvc split: no LLMInferenceService %s with a spec.model.uri", name)
		}
		uris[i] = s.ModelURI
	}
	r, ok := ex.LLMInferenceServices[l.Router]
	if !ok {
		return Split{}, fmt.Errorf("read llmisvc split: no LLMInferenceService named %s", l.Router)
	}
	for ri, rule := range r.Rules {
		si, err := rule.Index(l.Stable.Backend)
		if err != nil {
			return Split{}, fmt.Errorf("read llmisvc split: %s rule %d: %w", l.Router, ri, err)
		}
		ci, err := rule.Index(l.Canary.Backend)
		if err != nil {
			return Split{}, fmt.Errorf("read llmisvc split: %s rule %d: %w", l.Router, ri, err)
		}
		if si < 0 || ci < 0 {
			continue
		}
		pct, err := percent(rule.BackendRefs[si].Weight, rule.BackendRefs[ci].Weight)
		if err != nil {
			return Split{}, fmt.Errorf("read llmisvc split: %s rule %d: %w", l.Router, ri, err)
		}
		return Split{StableURI: uris[0], CanaryURI: uris[1], CanaryPercent: pct}, nil
	}
	return Split{}, fmt.Errorf("read llmisvc split: %s has no rule listing %s and %s", l.Router, l.Stable.Backend, l.Canary.Backend)
}
