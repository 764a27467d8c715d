// Package kustomize renders and verifies the files canarybot owns in a
// GitOps repository.
//
// The bot owns exactly one directory per overlay, <overlay>/canarybot/: a
// Kustomize Component whose kustomization.yaml lists JSON6902 patch files in
// the same directory. Humans own everything else, including the overlay's
// kustomization.yaml, which lists the component. Every bot-owned file starts
// with Header; the Renderer refuses to overwrite a file that does not.
//
// Builds run in-process with krusty over a read-only filesystem confined to
// the repository root, and are serialised by Builder because kustomize keeps
// process-wide state (kustomize issue #3659).
package kustomize

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
)

// Builder builds kustomize overlays in-process. kustomize builds are not
// safe to run concurrently (kustomize issue #3659), so Builder serialises
// them; share one Builder across the process. The zero value is ready.
type Builder struct {
	mu sync.Mutex
}

// NewBuilder returns a Builder.
func NewBuilder() *Builder { return &Builder{} }

// Build runs kustomize on overlay, a path relative to root, and returns the
// built objects as a YAML stream. Every file the build reads must resolve,
// symlinks included, inside root; absolute overlays, overlays that climb
// out of root and remote bases are refused with ErrOutsideRoot or
// ErrRemoteReference.
func (b *Builder) Build(ctx context.Context, root, overlay string) ([]byte, error) {
	return b.build(ctx, root, overlay, nil)
}

// build is Build with an optional shadow directory, given relative to the
// overlay, that replaces the directory of that name with in-memory files.
func (b *Builder) build(ctx context.Context, root, overlay string, shadow *shadowDir) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("build overlay %s: %w", overlay, err)
	}
	rel, err := localPath(overlay)
	if err != nil {
		return nil, fmt.Errorf("build overlay %s: %w", overlay, err)
	}
	fsys, err := newConfinedFS(root)
	if err != nil {
		return nil, fmt.Errorf("build overlay %s: %w", overlay, err)
	}
	dir, err := fsys.resolve(rel)
	if err != nil {
		return nil, fmt.Errorf("build overlay %s: %w", overlay, err)
	}
	if shadow != nil {
		shadow.dir = filepath.Join(dir, shadow.dir)
		if !within(fsys.root, shadow.dir) {
			return nil, fmt.Errorf("build overlay %s: shadow %s: %w", overlay, shadow.dir, ErrOutsideRoot)
		}
		fsys.shadow = shadow
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("build overlay %s: %w", overlay, err)
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(fsys, dir)
	if err != nil && fsys.refused != nil {
		return nil, fmt.Errorf("build overlay %s: %w (kustomize: %w)", overlay, fsys.refused, err)
	}
	if err != nil {
		return nil, fmt.Errorf("build overlay %s: %w", overlay, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("encode overlay %s: %w", overlay, err)
	}
	return out, nil
}
