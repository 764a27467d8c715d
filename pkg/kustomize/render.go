package kustomize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
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
	files, err := r.RenderOverlay(ctx, t.Dir, plan.Spec.Overlay, plan.Spec.Traffic, d)
	if err != nil {
		return nil, fmt.Errorf("render plan %s: %w", plan.Metadata.Name, err)
	}
	return files, nil
}

// RenderOverlay is Render without a plan object: it makes overlay, relative
// to root, express d under traffic.
func (r *Renderer) RenderOverlay(ctx context.Context, root, overlay string, traffic canary.TrafficSpec, d canary.Desired) (map[string][]byte, error) {
	rel, err := localPath(overlay)
	if err != nil {
		return nil, canary.Terminal(fmt.Errorf("render overlay %s: %w", overlay, err))
	}
	if err := validateDesired(d); err != nil {
		return nil, fmt.Errorf("render overlay %s: %w", overlay, err)
	}
	e, err := r.discover(ctx, root, rel)
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
	w, err := newComponentWriter(root, rel)
	if err != nil {
		return nil, err
	}
	if err := w.write(files); err != nil {
		return nil, errors.Join(err, w.restore())
	}
	if err := r.verify(ctx, root, rel, comp); err != nil {
		return nil, errors.Join(err, w.restore())
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
func (r *Renderer) discover(ctx context.Context, root, rel string) (*Expressed, error) {
	shadow := &shadowDir{
		dir:   ComponentDir,
		files: map[string][]byte{KustomizationFile: []byte(neutralComponent)},
	}
	out, err := r.builder.build(ctx, root, rel, shadow)
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

// verify builds the overlay as written and checks every intended value.
func (r *Renderer) verify(ctx context.Context, root, rel string, comp *component) error {
	out, err := r.builder.Build(ctx, root, rel)
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

// componentWriter writes the files of one component directory and can put
// back what was there before.
type componentWriter struct {
	dir     string
	created bool
	// prev holds the content each written file had; nil when it did not
	// exist.
	prev map[string][]byte
}

// newComponentWriter locates <root>/<rel>/canarybot, refusing any location
// outside root and a component path that is not a plain directory.
func newComponentWriter(root, rel string) (*componentWriter, error) {
	fsys, err := newConfinedFS(root)
	if err != nil {
		return nil, canary.Terminal(fmt.Errorf("render overlay %s: %w", rel, err))
	}
	overlayDir, err := fsys.resolve(rel)
	if err != nil {
		return nil, canary.Terminal(fmt.Errorf("render overlay %s: %w", rel, err))
	}
	dir := filepath.Join(overlayDir, ComponentDir)
	info, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("stat %s: %w", dir, err)
	case !info.IsDir():
		return nil, canary.Terminal(fmt.Errorf("%s is not a plain directory: %w", dir, canary.ErrHumanOwned))
	}
	return &componentWriter{dir: dir, prev: map[string][]byte{}}, nil
}

// write refuses the whole set when any target is not bot-owned, then writes
// every file.
func (w *componentWriter) write(files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := w.claim(n); err != nil {
			return err
		}
	}
	if _, err := os.Stat(w.dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(w.dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", w.dir, err)
		}
		w.created = true
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(w.dir, n), files[n], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", filepath.Join(w.dir, n), err)
		}
	}
	return nil
}

// claim checks that the file at name is absent or bot-owned, and records
// its content for restore.
func (w *componentWriter) claim(name string) error {
	p := filepath.Join(w.dir, name)
	info, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		w.prev[name] = nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", p, err)
	}
	if !info.Mode().IsRegular() {
		return canary.Terminal(fmt.Errorf("%s is not a regular file: %w", p, canary.ErrHumanOwned))
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if !bytes.HasPrefix(b, []byte(Header)) {
		return canary.Terminal(fmt.Errorf("%s does not start with %q: %w", p, Header, canary.ErrHumanOwned))
	}
	w.prev[name] = b
	return nil
}

// restore puts back every file write changed.
func (w *componentWriter) restore() error {
	var errs []error
	for name, b := range w.prev {
		p := filepath.Join(w.dir, name)
		if b == nil {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("restore %s: %w", p, err))
			}
			continue
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", p, err))
		}
	}
	if w.created {
		if err := os.Remove(w.dir); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", w.dir, err))
		}
	}
	return errors.Join(errs...)
}
