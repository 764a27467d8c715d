package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/canarybot/canarybot/pkg/artifact"
	"github.com/canarybot/canarybot/pkg/canary"
)

// Watcher implements canary.ArtifactSource over an OCI registry: it lists
// the plan's repository's tags, keeps those that are semantic versions
// within the plan's constraint, and proposes the highest, pinned by digest.
type Watcher struct {
	o *options
}

var _ canary.ArtifactSource = (*Watcher)(nil)

// NewWatcher returns a Watcher. By default it is anonymous and logs nothing.
func NewWatcher(opts ...Option) *Watcher {
	return &Watcher{o: newOptions(opts)}
}

// Latest returns the highest tag of plan.Spec.Model.Source.OCI.Repository
// that satisfies its Semver constraint, as oci://host/path@sha256:…, or nil
// when no tag does or the repository does not exist yet.
//
// Tags that are not semantic versions ("latest", "main") are ignored; a
// leading "v" is allowed ("v1.2.3", and leniently "v2"). With no
// constraint every release version qualifies. As in Masterminds/semver, a
// prerelease tag qualifies only when the constraint names a prerelease.
// When two tags are the same version ("1.0.0", "v1.0.0") the first in byte
// order wins. A missing source, a bad repository name or a bad constraint is
// a terminal error.
func (w *Watcher) Latest(ctx context.Context, plan *canary.CanaryPlan) (*canary.Artifact, error) {
	repo, constraint, err := w.source(plan)
	if err != nil {
		return nil, err
	}
	tags, err := remote.List(repo, w.o.remoteOptions(ctx)...)
	if isNotFound(err) {
		w.o.logger.DebugContext(ctx, "repository has no tags yet", "repository", repo.String())
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	best, skipped := highest(tags, constraint)
	w.o.logger.DebugContext(ctx, "listed tags", "repository", repo.String(),
		"tags", len(tags), "ignored", skipped, "selected", best)
	if best == "" {
		return nil, nil
	}
	tag := repo.Tag(best)
	digest, err := w.resolve(ctx, tag)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", tag, err)
	}
	ref := artifact.Ref{
		Scheme: artifact.SchemeOCI,
		Host:   repo.RegistryStr(),
		Path:   repo.RepositoryStr(),
		Digest: digest.String(),
	}
	pinned, err := artifact.Parse(ref.String())
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", tag, canary.Terminal(err))
	}
	return &canary.Artifact{URI: pinned.String(), Version: best}, nil
}

// source reads and validates the plan's OCI source.
func (w *Watcher) source(plan *canary.CanaryPlan) (name.Repository, *semver.Constraints, error) {
	if plan == nil || plan.Spec.Model.Source.OCI == nil {
		planName := ""
		if plan != nil {
			planName = plan.Metadata.Name
		}
		return name.Repository{}, nil, canary.Terminal(fmt.Errorf(
			"%w: plan %q has no spec.model.source.oci", canary.ErrInvalidPlan, planName))
	}
	src := plan.Spec.Model.Source.OCI
	repo, err := name.NewRepository(src.Repository, w.o.nameOptions()...)
	if err != nil {
		return name.Repository{}, nil, canary.Terminal(fmt.Errorf(
			"%w: plan %q: repository %q: %w", canary.ErrInvalidPlan, plan.Metadata.Name, src.Repository, err))
	}
	expr := src.Semver
	if expr == "" {
		expr = "*"
	}
	c, err := semver.NewConstraint(expr)
	if err != nil {
		return name.Repository{}, nil, canary.Terminal(fmt.Errorf(
			"%w: plan %q: semver constraint %q: %w", canary.ErrInvalidPlan, plan.Metadata.Name, src.Semver, err))
	}
	return repo, c, nil
}

// highest returns the tag with the highest version satisfying c, or "",
// and how many tags were not semantic versions.
func highest(tags []string, c *semver.Constraints) (best string, skipped int) {
	sorted := append([]string(nil), tags...)
	sort.Strings(sorted)
	var bestV *semver.Version
	for _, t := range sorted {
		v, err := semver.NewVersion(t)
		if err != nil {
			skipped++
			continue
		}
		if !c.Check(v) {
			continue
		}
		if bestV == nil || v.GreaterThan(bestV) {
			best, bestV = t, v
		}
	}
	return best, skipped
}

// resolve returns the manifest digest a tag points at now. It asks with
// HEAD and falls back to GET for registries that answer HEAD badly.
func (w *Watcher) resolve(ctx context.Context, tag name.Tag) (v1.Hash, error) {
	opts := w.o.remoteOptions(ctx)
	desc, err := remote.Head(tag, opts...)
	if err == nil {
		return desc.Digest, nil
	}
	if ctx.Err() != nil {
		return v1.Hash{}, err
	}
	w.o.logger.DebugContext(ctx, "HEAD failed; trying GET", "tag", tag.String(), "error", err)
	got, gerr := remote.Get(tag, opts...)
	if gerr != nil {
		return v1.Hash{}, gerr
	}
	return got.Digest, nil
}

// isNotFound reports whether err says the repository does not exist.
func isNotFound(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range terr.Errors {
		if d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}
