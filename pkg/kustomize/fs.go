package kustomize

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// ErrOutsideRoot marks a path that is absolute where a relative one is
// required, climbs out of the repository root, or resolves (through
// symlinks) to a location outside it.
var ErrOutsideRoot = errors.New("path escapes the repository root")

// ErrRemoteReference marks a kustomization that refers to a remote base or
// file (http(s) URL or git repository); builds only read the local tree.
var ErrRemoteReference = errors.New("remote reference not allowed")

// errReadOnly is returned by every mutating method of confinedFS.
var errReadOnly = errors.New("build filesystem is read-only")

// confinedFS is a read-only filesys.FileSystem for kustomize builds. Every
// path is resolved, symlinks included, and refused when it lands outside
// root. Kustomization files are checked for remote references before
// kustomize sees them. It can shadow one directory with in-memory files,
// which the Renderer uses to build an overlay with its bot component
// neutralised. A confinedFS serves one build and is not shared.
type confinedFS struct {
	// root is absolute and has its symlinks evaluated.
	root   string
	shadow *shadowDir
	// refused is the first path or reference refused. kustomize turns some
	// read errors into "not found", so the builder reports this instead.
	refused error
}

var _ filesys.FileSystem = (*confinedFS)(nil)

// shadowDir replaces a directory (which may not exist on disk) with files.
type shadowDir struct {
	// dir is absolute, in the same resolved form confinedFS hands out.
	dir string
	// files maps base names to content.
	files map[string][]byte
	// read records whether kustomize loaded any shadow file.
	read bool
}

// newConfinedFS resolves root and returns a filesystem confined to it.
func newConfinedFS(root string) (*confinedFS, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("resolve root %s: %w", root, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("resolve root %s: %w", root, err)
	}
	info, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("stat root %s: %w", root, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("root %s is not a directory", root)
	}
	return &confinedFS{root: real}, nil
}

// localPath checks that rel is a non-empty relative path that stays inside
// the root lexically, and returns it cleaned.
func localPath(rel string) (string, error) {
	if rel == "" {
		return "", fmt.Errorf("empty path: %w", ErrOutsideRoot)
	}
	if filepath.IsAbs(rel) || strings.HasPrefix(rel, "/") {
		return "", fmt.Errorf("path %q is absolute, want one relative to the repository root: %w", rel, ErrOutsideRoot)
	}
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("path %q leaves the repository root: %w", rel, ErrOutsideRoot)
	}
	return filepath.Clean(rel), nil
}

// within reports whether the absolute path p is root or lies under it.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && (rel == "." || filepath.IsLocal(rel))
}

// abs makes p absolute against the root and cleans it, without touching
// the disk.
func (c *confinedFS) abs(p string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(c.root, p)
	}
	return filepath.Clean(p)
}

// inShadow reports whether the absolute path p is the shadow dir or in it.
func (c *confinedFS) inShadow(p string) bool {
	return c.shadow != nil && within(c.shadow.dir, p)
}

// shadowFile returns the shadowed content at p, or an fs.ErrNotExist error.
func (c *confinedFS) shadowFile(p string) ([]byte, error) {
	if filepath.Dir(p) == c.shadow.dir {
		if b, ok := c.shadow.files[filepath.Base(p)]; ok {
			return b, nil
		}
	}
	return nil, fmt.Errorf("read %s: %w", p, fs.ErrNotExist)
}

// resolve returns the symlink-free location of an existing path and
// refuses any that is outside the root.
func (c *confinedFS) resolve(p string) (string, error) {
	a := c.abs(p)
	real, err := filepath.EvalSymlinks(a)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", p, err)
	}
	if !within(c.root, real) {
		return "", c.refuse(fmt.Errorf("%s resolves to %s, outside %s: %w", p, real, c.root, ErrOutsideRoot))
	}
	return real, nil
}

// refuse records err as the first refusal and returns it.
func (c *confinedFS) refuse(err error) error {
	if c.refused == nil {
		c.refused = err
	}
	return err
}

// CleanedAbs splits a path into a confirmed directory and a file name.
func (c *confinedFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	a := c.abs(p)
	if c.inShadow(a) {
		if a == c.shadow.dir {
			return filesys.ConfirmedDir(a), "", nil
		}
		if _, err := c.shadowFile(a); err != nil {
			return "", "", err
		}
		return filesys.ConfirmedDir(filepath.Dir(a)), filepath.Base(a), nil
	}
	real, err := c.resolve(a)
	if err != nil {
		return "", "", err
	}
	info, err := os.Stat(real)
	if err != nil {
		return "", "", fmt.Errorf("stat %s: %w", p, err)
	}
	if info.IsDir() {
		return filesys.ConfirmedDir(real), "", nil
	}
	return filesys.ConfirmedDir(filepath.Dir(real)), filepath.Base(real), nil
}

// ReadFile reads a file inside the root. Kustomization files are refused
// when they refer to remote resources.
func (c *confinedFS) ReadFile(p string) ([]byte, error) {
	a := c.abs(p)
	if c.inShadow(a) {
		b, err := c.shadowFile(a)
		if err == nil {
			c.shadow.read = true
		}
		return b, err
	}
	real, err := c.resolve(a)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(real)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if slices.Contains(konfig.RecognizedKustomizationFileNames(), filepath.Base(real)) {
		if err := checkNoRemote(real, b); err != nil {
			return nil, c.refuse(err)
		}
	}
	return b, nil
}

// Exists reports whether p exists inside the root.
func (c *confinedFS) Exists(p string) bool {
	a := c.abs(p)
	if c.inShadow(a) {
		_, err := c.shadowFile(a)
		return a == c.shadow.dir || err == nil
	}
	_, err := c.resolve(a)
	return err == nil
}

// IsDir reports whether p is a directory inside the root.
func (c *confinedFS) IsDir(p string) bool {
	a := c.abs(p)
	if c.inShadow(a) {
		return a == c.shadow.dir
	}
	real, err := c.resolve(a)
	if err != nil {
		return false
	}
	info, err := os.Stat(real)
	return err == nil && info.IsDir()
}

// ReadDir lists a directory inside the root.
func (c *confinedFS) ReadDir(p string) ([]string, error) {
	a := c.abs(p)
	if c.inShadow(a) {
		if a != c.shadow.dir {
			return nil, fmt.Errorf("read dir %s: %w", p, fs.ErrNotExist)
		}
		names := make([]string, 0, len(c.shadow.files))
		for n := range c.shadow.files {
			names = append(names, n)
		}
		slices.Sort(names)
		return names, nil
	}
	real, err := c.resolve(a)
	if err != nil {
		return nil, err
	}
	return filesys.MakeFsOnDisk().ReadDir(real)
}

// Open opens a file inside the root. Shadowed files cannot be opened.
func (c *confinedFS) Open(p string) (filesys.File, error) {
	a := c.abs(p)
	if c.inShadow(a) {
		return nil, fmt.Errorf("open %s: in-memory file: %w", p, errors.ErrUnsupported)
	}
	real, err := c.resolve(a)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	return f, nil
}

// Glob matches a pattern and keeps only matches inside the root.
func (c *confinedFS) Glob(pattern string) ([]string, error) {
	matches, err := filesys.MakeFsOnDisk().Glob(c.abs(pattern))
	if err != nil {
		return nil, fmt.Errorf("glob %s: %w", pattern, err)
	}
	out := make([]string, 0, len(matches))
	for _, m := range matches {
		if _, err := c.resolve(m); err == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// Walk walks a directory inside the root. filepath.Walk does not follow
// symlinks, so the walk stays where it starts.
func (c *confinedFS) Walk(p string, fn filepath.WalkFunc) error {
	real, err := c.resolve(p)
	if err != nil {
		return err
	}
	return filepath.Walk(real, fn)
}

// Create is refused: builds never write.
func (c *confinedFS) Create(p string) (filesys.File, error) {
	return nil, fmt.Errorf("create %s: %w", p, errReadOnly)
}

// Mkdir is refused: builds never write.
func (c *confinedFS) Mkdir(p string) error { return fmt.Errorf("mkdir %s: %w", p, errReadOnly) }

// MkdirAll is refused: builds never write.
func (c *confinedFS) MkdirAll(p string) error { return fmt.Errorf("mkdir %s: %w", p, errReadOnly) }

// RemoveAll is refused: builds never write.
func (c *confinedFS) RemoveAll(p string) error {
	return fmt.Errorf("remove %s: %w", p, errReadOnly)
}

// WriteFile is refused: builds never write.
func (c *confinedFS) WriteFile(p string, _ []byte) error {
	return fmt.Errorf("write %s: %w", p, errReadOnly)
}
