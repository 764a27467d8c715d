// Package kustomize renders and verifies the files canarybot owns in a
// GitOps repository.
//
// The bot owns exactly one directory per overlay, <overlay>/canarybot/: a
// Kustomize Component whose kustomization.yaml lists JSON6902 patch files in
// the same directory. Humans own everything else, including the overlay's
// kustomization.yaml, which lists the component. Every bot-owned file starts
// with Header; the Renderer refuses to overwrite a file that does not.
//
// Builds run in-process with krusty over a read-only view of one revision
// of the repository (an fs.FS), and are serialised by Builder because kustomize keeps
// process-wide state (kustomize issue #3659).
package kustomize

import (
	"context"
	"fmt"
	"io/fs"
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

// Build runs kustomize on overlay, a path relative to the root of fsys
// (one revision of the repository), and returns the built objects as a
// YAML stream. Every file the build reads must be inside fsys; absolute
// overlays, overlays that climb out of the root, paths through links fsys
// refuses, and remote bases are refused with ErrOutsideRoot or
// ErrRemoteReference.
func (b *Builder) Build(ctx context.Context, fsys fs.FS, overlay string) ([]byte, error) {
	return b.build(ctx, fsys, overlay, nil)
}

// build is Build with an optional shadow directory, given relative to the
// overlay, that replaces the directory of that name with in-memory files.
func (b *Builder) build(ctx context.Context, fsys fs.FS, overlay string, shadow *shadowDir) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("build overlay %s: %w", overlay, err)
	}
	rel, err := localPath(overlay)
	if err != nil {
		return nil, fmt.Errorf("build overlay %s: %w", overlay, err)
	}
	if fsys == nil {
		return nil, fmt.Errorf("build overlay %s: no repository files", overlay)
	}
	cfs := &confinedFS{fsys: fsys}
	dir := filepath.Join(Root, rel)
	if shadow != nil {
		shadow.dir = filepath.Join(dir, shadow.dir)
		if !within(dir, shadow.dir) {
			return nil, fmt.Errorf("build overlay %s: shadow %s: %w", overlay, shadow.dir, ErrOutsideRoot)
		}
		cfs.shadow = shadow
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("build overlay %s: %w", overlay, err)
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(cfs, dir)
	if err != nil && cfs.refused != nil {
		return nil, fmt.Errorf("build overlay %s: %w (kustomize: %w)", overlay, cfs.refused, err)
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
