// Package traffic reads the traffic split a plan's objects express live in
// the kube-apiserver, and applies it to the simulated model servers of
// internal/modelsim. With it, end-to-end tests route requests by what
// Argo CD actually applied: nothing here reads Git.
//
// In gateway mode the split is the HTTPRoute's spec.rules[0] backend
// weights for the stable and canary Services, and each side's model is its
// InferenceService's spec storageUri.
//
// In kserve mode the split is what the KServe controller (here
// internal/e2e/kservesim) reports in the InferenceService's
// status.components.predictor.traffic, not the spec: KServe cuts a new
// revision for a new storageUri and keeps the last revision rolled out at
// 100% serving the rest (tag "prev"), and a revision that never becomes
// ready gets no traffic. The model each revision serves comes from the
// storageUri kservesim records per revision in status.annotations (see
// kservesim.Traffic). Until a controller has written that status there is
// no split. KServe's overlay for "canary at 100%" and for "promoted" is
// the same object, so in kserve mode both read as the new model stable at
// 100%.
//
// In llmisvc mode the split is the weights of the two members' backends in
// the Router LLMInferenceService's inline route
// (spec.router.route.http.spec), and each side's model is its member's
// spec.model.uri.
package traffic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/canarybot/canarybot/internal/e2e/kservesim"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/kustomize"
)

// ErrNotReady means the split cannot be read yet: an object is missing, or
// in kserve mode no controller has reported traffic.
var ErrNotReady = errors.New("traffic split not readable yet")

// Split is the live desired split between the stable and the canary model.
type Split struct {
	// StableURI is the storageUri serving the stable share.
	StableURI string
	// CanaryURI is the storageUri serving the canary share. It equals
	// StableURI when both sides serve the same model.
	CanaryURI string
	// CanaryPercent is the canary's share, 0..100; the stable side gets
	// the rest.
	CanaryPercent int
}

// Config names what to read.
type Config struct {
	// Namespace holds the plan's InferenceServices and HTTPRoute.
	Namespace string
	// Traffic is the plan's spec.traffic.
	Traffic canary.TrafficSpec
	// Logger receives Watch's warnings; nil discards them.
	Logger *slog.Logger
}

func (c Config) validate() error {
	if c.Namespace == "" {
		return errors.New("traffic config: empty namespace")
	}
	switch c.Traffic.Mode {
	case canary.ModeGateway:
		g := c.Traffic.Gateway
		if g == nil || g.HTTPRoute == "" || g.Stable.InferenceService == "" || g.Stable.Service == "" ||
			g.Canary.InferenceService == "" || g.Canary.Service == "" {
			return errors.New("traffic config: gateway mode needs an HTTPRoute and both backends' InferenceService and Service")
		}
	case canary.ModeKServe:
		if c.Traffic.KServe == nil || c.Traffic.KServe.InferenceService == "" {
			return errors.New("traffic config: kserve mode needs an InferenceService")
		}
	case canary.ModeLLMISVC:
		l := c.Traffic.LLMISVC
		if l == nil || l.Router == "" || l.Stable.Name == "" || l.Stable.Backend == "" || l.Canary.Name == "" || l.Canary.Backend == "" {
			return errors.New("traffic config: llmisvc mode needs a router and both members' name and backend")
		}
	default:
		return fmt.Errorf("traffic config: unknown mode %q", c.Traffic.Mode)
	}
	return nil
}

// HTTPRouteGVR is the Gateway API HTTPRoute resource gateway mode reads.
func HTTPRouteGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: kustomize.GroupGatewayAPI, Version: "v1", Resource: "httproutes"}
}

// Read gets the plan's objects from the kube-apiserver and returns the
// split they express.
func Read(ctx context.Context, dyn dynamic.Interface, cfg Config) (Split, error) {
	if err := cfg.validate(); err != nil {
		return Split{}, err
	}
	get := func(gvr schema.GroupVersionResource, name string) (*unstructured.Unstructured, error) {
		o, err := dyn.Resource(gvr).Namespace(cfg.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get %s %s/%s: %w", gvr.Resource, cfg.Namespace, name, ErrNotReady)
		}
		if err != nil {
			return nil, fmt.Errorf("get %s %s/%s: %w", gvr.Resource, cfg.Namespace, name, err)
		}
		return o, nil
	}
	return splitOf(cfg, get)
}

// getter fetches one object; a missing one is ErrNotReady.
type getter func(gvr schema.GroupVersionResource, name string) (*unstructured.Unstructured, error)

func splitOf(cfg Config, get getter) (Split, error) {
	if cfg.Traffic.Mode == canary.ModeLLMISVC {
		return llmisvcSplit(cfg.Traffic.LLMISVC, get)
	}
	if cfg.Traffic.Mode == canary.ModeKServe {
		isvc, err := get(kservesim.GVR(), cfg.Traffic.KServe.InferenceService)
		if err != nil {
			return Split{}, err
		}
		return KServeSplit(isvc)
	}
	g := cfg.Traffic.Gateway
	var objs [3]*unstructured.Unstructured
	for i, ref := range []struct {
		gvr  schema.GroupVersionResource
		name string
	}{{HTTPRouteGVR(), g.HTTPRoute}, {kservesim.GVR(), g.Stable.InferenceService}, {kservesim.GVR(), g.Canary.InferenceService}} {
		o, err := get(ref.gvr, ref.name)
		if err != nil {
			return Split{}, err
		}
		objs[i] = o
	}
	return GatewaySplit(g, objs[0], objs[1], objs[2])
}

// GatewaySplit is the split that route, an HTTPRoute, and the stable and
// canary InferenceServices express for g. It reads storageUri wherever
// kustomize.Parse finds it, so that it agrees with what the bot renders.
func GatewaySplit(g *canary.GatewayTraffic, route, stable, can *unstructured.Unstructured) (Split, error) {
	var stream bytes.Buffer
	for _, o := range []*unstructured.Unstructured{route, stable, can} {
		doc, err := yaml.Marshal(o.Object)
		if err != nil {
			return Split{}, fmt.Errorf("encode %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		stream.WriteString("---\n")
		stream.Write(doc)
	}
	ex, err := kustomize.Parse(stream.Bytes())
	if err != nil {
		return Split{}, fmt.Errorf("read gateway split: %w", err)
	}
	r, ok := ex.HTTPRoutes[g.HTTPRoute]
	if !ok {
		return Split{}, fmt.Errorf("read gateway split: no HTTPRoute named %s", g.HTTPRoute)
	}
	if len(r.Rules) == 0 {
		return Split{}, fmt.Errorf("read gateway split: HTTPRoute %s has no rules", g.HTTPRoute)
	}
	var weights [2]int
	for i, svc := range []string{g.Stable.Service, g.Canary.Service} {
		idx, err := r.Rules[0].Index(svc)
		if err != nil {
			return Split{}, fmt.Errorf("read gateway split: HTTPRoute %s rule 0: %w", g.HTTPRoute, err)
		}
		if idx < 0 {
			return Split{}, fmt.Errorf("read gateway split: HTTPRoute %s rule 0 has no backend %s", g.HTTPRoute, svc)
		}
		weights[i] = r.Rules[0].BackendRefs[idx].Weight
	}
	var uris [2]string
	for i, name := range []string{g.Stable.InferenceService, g.Canary.InferenceService} {
		isvc, ok := ex.InferenceServices[name]
		if !ok {
			return Split{}, fmt.Errorf("read gateway split: no InferenceService named %s", name)
		}
		if isvc.StorageURIError != "" {
			return Split{}, fmt.Errorf("read gateway split: InferenceService %s: %s", name, isvc.StorageURIError)
		}
		uris[i] = isvc.StorageURI
	}
	pct, err := percent(weights[0], weights[1])
	if err != nil {
		return Split{}, fmt.Errorf("read gateway split: HTTPRoute %s: %w", g.HTTPRoute, err)
	}
	return Split{StableURI: uris[0], CanaryURI: uris[1], CanaryPercent: pct}, nil
}

// percent is the canary's share of two relative weights, rounded to the
// nearest percent.
func percent(stable, can int) (int, error) {
	sum := stable + can
	if stable < 0 || can < 0 || sum <= 0 {
		return 0, fmt.Errorf("weights %d/%d do not split traffic", stable, can)
	}
	return (200*can + sum) / (2 * sum), nil
}

// KServeSplit is the split a KServe InferenceService's status reports: the
// latest ready revision's share is the canary's, the "prev" share the
// stable's. With only the latest revision routed, both sides serve its
// model and the canary's share is 0.
func KServeSplit(isvc *unstructured.Unstructured) (Split, error) {
	targets, err := kservesim.Traffic(isvc)
	if errors.Is(err, kservesim.ErrNoTraffic) {
		return Split{}, fmt.Errorf("read kserve split: %w: %w", ErrNotReady, err)
	}
	if err != nil {
		return Split{}, fmt.Errorf("read kserve split: %w", err)
	}
	var latest, prev *kservesim.Target
	sum := 0
	for i := range targets {
		t := &targets[i]
		sum += t.Percent
		switch {
		case t.LatestRevision && latest == nil:
			latest = t
		case !t.LatestRevision && prev == nil:
			prev = t
		default:
			return Split{}, fmt.Errorf("read kserve split of %s: more than one latest and one previous traffic target", isvc.GetName())
		}
	}
	if latest == nil || sum != 100 {
		return Split{}, fmt.Errorf("read kserve split of %s: want a latest revision target and shares summing to 100, got %+v",
			isvc.GetName(), targets)
	}
	if prev == nil {
		return Split{StableURI: latest.StorageURI, CanaryURI: latest.StorageURI}, nil
	}
	return Split{StableURI: prev.StorageURI, CanaryURI: latest.StorageURI, CanaryPercent: latest.Percent}, nil
}
