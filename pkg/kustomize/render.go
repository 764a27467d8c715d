package kustomize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Renderer writes and verifies the bot-owned component of an overlay. It
// implements canary.Renderer.
//
// Render first builds the overlay with its component replaced by an empty
// one, so it sees exactly what the human files express: where each
// InferenceService keeps its storageUri and at which index each HTTPRoute
// backend sits. Because of that, an overlay with no component directory yet
// is bootstrapped (the human kustomization must already list the
// component), and an overlay whose humans reordered backends, breaking the
// committed component's test operations, is repaired. Render then writes
// the component, builds the overlay as committed, and checks that the
// output carries exactly the intended values.
//
// A Renderer must not render the same tree from two goroutines at once.
type Renderer struct {
	builder *Builder
}

var _ canary.Renderer = (*Renderer)(nil)

// NewRenderer returns a Renderer that builds with b, or with a new Builder
// when b is nil. Share b with every other kustomize user in the process.
func NewRenderer(b *Builder) *Renderer {
	if b == nil {
		b = NewBuilder()
	}
	return &Renderer{builder: b}
}

// Render makes plan's overlay in t express d. It returns every file of the
// component keyed by repo-relative slash path. Errors that retrying cannot
// fix (bad paths, human-owned files, an overlay that does not express the
// intended split) are canary.Terminal; a failing kustomize build is not,
// since a newer head may fix it.
func (r *Renderer) Render(ctx context.Context, t canary.Tree, plan *canary.CanaryPlan, d canary.Desired) (map[string][]byte, error) {
	if plan == nil {
		return nil, invalidPlan("nil plan")
	}
	files, err := r.RenderOverlay(ctx, t.FS, plan.Spec.Overlay, plan.Spec.Traffic, d)
	if err != nil {
		return nil, fmt.Errorf("render plan %s: %w", plan.Metadata.Name, err)
	}
	return files, nil
}

// RenderOverlay is Render without a plan object: it makes overlay, relative
// to the root of fsys, express d under traffic. It writes nothing: the
// component is verified by building the overlay with it in memory.
func (r *Renderer) RenderOverlay(ctx context.Context, fsys fs.FS, overlay string, traffic canary.TrafficSpec, d canary.Desired) (map[string][]byte, error) {
	rel, err := localPath(overlay)
	if err != nil {
		return nil, canary.Terminal(fmt.Errorf("render overlay %s: %w", overlay, err))
	}
	if err := validateDesired(d); err != nil {
		return nil, fmt.Errorf("render overlay %s: %w", overlay, err)
	}
	e, err := r.discover(ctx, fsys, rel)
	if err != nil {
		return nil, err
	}
	comp, err := newComponent(e, traffic, d)
	if err != nil {
		return nil, fmt.Errorf("render overlay %s: %w", overlay, err)
	}
	files, err := comp.files()
	if err != nil {
		return nil, fmt.Errorf("render overlay %s: %w", overlay, err)
	}
	if err := claim(fsys, path.Join(filepath.ToSlash(rel), ComponentDir), files); err != nil {
		return nil, err
	}
	if err := r.verify(ctx, fsys, rel, comp, files); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(files))
	for name, b := range files {
		out[path.Join(filepath.ToSlash(rel), ComponentDir, name)] = b
	}
	return out, nil
}

// validateDesired refuses a split no overlay can express.
func validateDesired(d canary.Desired) error {
	if d.Stable == "" {
		return canary.Terminalf("desired split has no stable artifact")
	}
	if d.CanaryWeight < 0 || d.CanaryWeight > 100 {
		return canary.Terminalf("desired canary weight %d is outside 0..100", d.CanaryWeight)
	}
	return nil
}

// discover builds the overlay with the bot's component neutralised and
// parses what the human-owned files express.
func (r *Renderer) discover(ctx context.Context, fsys fs.FS, rel string) (*Expressed, error) {
	shadow := &shadowDir{
		dir:   ComponentDir,
		files: map[string][]byte{KustomizationFile: []byte(neutralComponent)},
	}
	out, err := r.builder.build(ctx, fsys, rel, shadow)
	if err != nil {
		if errors.Is(err, ErrOutsideRoot) || errors.Is(err, ErrRemoteReference) {
			err = canary.Terminal(err)
		}
		return nil, fmt.Errorf("discover overlay %s: %w", rel, err)
	}
	if !shadow.read {
		return nil, canary.Terminalf("discover overlay %s: its kustomization does not list the component %q; add it under components:", rel, ComponentDir)
	}
	e, err := Parse(out)
	if err != nil {
		return nil, fmt.Errorf("discover overlay %s: %w", rel, err)
	}
	return e, nil
}

// verify builds the overlay with the component's files as they will be
// committed and checks every intended value.
func (r *Renderer) verify(ctx context.Context, fsys fs.FS, rel string, comp *component, files map[string][]byte) error {
	out, err := r.builder.build(ctx, fsys, rel, &shadowDir{dir: ComponentDir, files: files})
	if err != nil {
		return fmt.Errorf("verify overlay %s: %w", rel, err)
	}
	e, err := Parse(out)
	if err != nil {
		return fmt.Errorf("verify overlay %s: %w", rel, err)
	}
	var bad []string
	for _, c := range comp.checks {
		if got := c.Got(e); got != c.Want {
			bad = append(bad, fmt.Sprintf("%s: expected %q, got %q", c.What, c.Want, got))
		}
	}
	if len(bad) > 0 {
		return canary.Terminalf("verify overlay %s: build does not express the intended split: %s", rel, strings.Join(bad, "; "))
	}
	return nil
}

// claim checks that the component directory dir (a repo path) is absent or
// a plain directory, and that each file of files there is absent or
// bot-owned: canarybot never overwrites a file a human wrote.
func claim(fsys fs.FS, dir string, files map[string][]byte) error {
	info, err := fs.Stat(fsys, dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return canary.Terminal(fmt.Errorf("%s is not a plain directory (%w): %w", dir, err, canary.ErrHumanOwned))
	case !info.IsDir():
		return canary.Terminal(fmt.Errorf("%s is not a plain directory: %w", dir, canary.ErrHumanOwned))
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		p := path.Join(dir, name)
		info, err := fs.Stat(fsys, p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return canary.Terminal(fmt.Errorf("%s is not a regular file (%w): %w", p, err, canary.ErrHumanOwned))
		case !info.Mode().IsRegular():
			return canary.Terminal(fmt.Errorf("%s is not a regular file: %w", p, canary.ErrHumanOwned))
		}
		b, err := canary.ReadRepoFile(fsys, p, MaxComponentFile)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		if !bytes.HasPrefix(b, []byte(Header)) {
			return canary.Terminal(fmt.Errorf("%s does not start with %q: %w", p, Header, canary.ErrHumanOwned))
		}
	}
	return nil
}

// MaxComponentFile bounds a bot-owned file read back from the repository.
const MaxComponentFile = 1 << 20
