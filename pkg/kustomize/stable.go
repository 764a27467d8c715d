package kustomize

import (
	"context"
	"fmt"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Stable reads the artifact the plan's overlay serves as stable today: the
// storageUri of the kserve InferenceService, or of the gateway's stable
// one, or the spec.model.uri of the llmisvc stable member. It seeds the
// state of a plan that has never rolled out.
func (r *Renderer) Stable(ctx context.Context, t canary.Tree, plan *canary.CanaryPlan) (canary.Artifact, error) {
	out, err := r.builder.Build(ctx, t.FS, plan.Spec.Overlay)
	if err != nil {
		return canary.Artifact{}, err
	}
	ex, err := Parse(out)
	if err != nil {
		return canary.Artifact{}, fmt.Errorf("parse overlay %s: %w", plan.Spec.Overlay, err)
	}
	if l := plan.Spec.Traffic.LLMISVC; l != nil {
		return llmisvcStable(ex, plan.Spec.Overlay, l)
	}
	name := ""
	switch tr := plan.Spec.Traffic; {
	case tr.KServe != nil:
		name = tr.KServe.InferenceService
	case tr.Gateway != nil:
		name = tr.Gateway.Stable.InferenceService
	}
	isvc, ok := ex.InferenceServices[name]
	if !ok {
		return canary.Artifact{}, canary.Terminalf("overlay %s has no InferenceService %q", plan.Spec.Overlay, name)
	}
	if isvc.StorageURI == "" {
		return canary.Artifact{}, canary.Terminalf("InferenceService %s in %s has no storageUri: %s", name, plan.Spec.Overlay, isvc.StorageURIError)
	}
	return canary.Artifact{URI: isvc.StorageURI}, nil
}
