// Package registry routes a plan to the watcher of its registry kind.
// The watchers live in subpackages: oci (go-containerregistry), mlflow
// (MLflow's REST API) and notify (webhooks and polling that wake the
// engine).
package registry

import (
	"context"
	"fmt"

	"github.com/canarybot/canarybot/pkg/artifact"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/redact"
)

// Sources implements canary.ArtifactSource by the plan's
// spec.model.source: OCI and MLflow go to their watchers, and a static
// source proposes its one pinned URI. A plan whose kind has no watcher
// configured is a terminal error.
type Sources struct {
	OCI    canary.ArtifactSource
	MLflow canary.ArtifactSource
}

var _ canary.ArtifactSource = Sources{}

// Latest implements canary.ArtifactSource. Its errors, which end up in
// logs and in the reasons committed to Git, show no credential of any URL
// they quote (a registry's redirect to a presigned blob URL, a tracking
// URI with a token).
func (s Sources) Latest(ctx context.Context, plan *canary.CanaryPlan) (*canary.Artifact, error) {
	a, err := s.latest(ctx, plan)
	return a, redact.Error(err)
}

func (s Sources) latest(ctx context.Context, plan *canary.CanaryPlan) (*canary.Artifact, error) {
	src := plan.Spec.Model.Source
	switch {
	case src.Static != nil:
		return Static(src.Static)
	case src.OCI != nil && s.OCI != nil:
		return s.OCI.Latest(ctx, plan)
	case src.MLflow != nil && s.MLflow != nil:
		return s.MLflow.Latest(ctx, plan)
	case src.OCI != nil, src.MLflow != nil:
		return nil, canary.Terminalf("plan %q: no watcher is configured for its source", plan.Metadata.Name)
	case src.FromPlan != nil:
		return nil, canary.Terminalf("plan %q: a fromPlan source is read from its upstream stage's state in Git "+
			"(canary.Engine.Pipeline), not from a registry", plan.Metadata.Name)
	}
	return nil, canary.Terminal(fmt.Errorf("%w: plan %q has no spec.model.source", canary.ErrInvalidPlan, plan.Metadata.Name))
}

// Static is the artifact a static source proposes: its URI, which must be
// pinned, canonicalised. A mutable URI is a terminal error that wraps
// canary.ErrMutableReference.
func Static(src *canary.StaticSource) (*canary.Artifact, error) {
	ref, err := artifact.Parse(src.URI)
	if err != nil {
		return nil, canary.Terminal(fmt.Errorf("spec.model.source.static.uri: %w", err))
	}
	version := src.Version
	if version == "" {
		version = ref.Tag
	}
	return &canary.Artifact{URI: ref.String(), Version: version}, nil
}
