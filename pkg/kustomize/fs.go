package kustomize

import (
	"errors"
	"fmt"
	"io/fs"
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

// Root is the absolute path under which builds see the repository. It
// names nothing on disk: every read goes to the repository's fs.FS.
const Root = "/repo"

// confinedFS is a read-only filesys.FileSystem for kustomize builds over
// one revision of the repository, an fs.FS (a Git snapshot, which refuses
// symbolic links, or an os.Root, which keeps them inside). kustomize sees
// the repository at Root; a path outside it is refused. Kustomization
// files are checked for remote references before kustomize sees them. It
// can shadow one directory with in-memory files, which the Renderer uses
// to build an overlay with its bot component neutralised, and to verify
// the component it is about to commit. A confinedFS serves one build and
// is not shared.
type confinedFS struct {
	fsys   fs.FS
	shadow *shadowDir
	// refused is the first path or reference refused. kustomize turns some
	// read errors into "not found", so the builder reports this instead.
	refused error
}

var _ filesys.FileSystem = (*confinedFS)(nil)

// shadowDir replaces a directory (which may not exist) with files.
type shadowDir struct {
	// dir is absolute, under Root.
	dir string
	// files maps base names to content.
	files map[string][]byte
	// read records whether kustomize loaded any shadow file.
	read bool
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

// abs makes p absolute against Root and cleans it.
func (c *confinedFS) abs(p string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(Root, p)
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

// resolve returns the fs.FS name of the absolute or Root-relative path p,
// refusing any outside Root.
func (c *confinedFS) resolve(p string) (string, error) {
	a := c.abs(p)
	if !within(Root, a) {
		return "", c.refuse(fmt.Errorf("%s is outside the repository: %w", p, ErrOutsideRoot))
	}
	rel, err := filepath.Rel(Root, a)
	if err != nil {
		return "", c.refuse(fmt.Errorf("%s: %w", p, ErrOutsideRoot))
	}
	return filepath.ToSlash(rel), nil
}

// stat describes p, recording a refused link or escape.
func (c *confinedFS) stat(p string) (string, fs.FileInfo, error) {
	name, err := c.resolve(p)
	if err != nil {
		return "", nil, err
	}
	info, err := fs.Stat(c.fsys, name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", nil, c.refuse(fmt.Errorf("%s: %w (%w)", p, ErrOutsideRoot, err))
	}
	return name, info, err
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
	_, info, err := c.stat(a)
	if err != nil {
		return "", "", err
	}
	if info.IsDir() {
		return filesys.ConfirmedDir(a), "", nil
	}
	return filesys.ConfirmedDir(filepath.Dir(a)), filepath.Base(a), nil
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
	name, err := c.resolve(a)
	if err != nil {
		return nil, err
	}
	b, err := fs.ReadFile(c.fsys, name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			err = c.refuse(fmt.Errorf("%s: %w (%w)", p, ErrOutsideRoot, err))
		}
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if slices.Contains(konfig.RecognizedKustomizationFileNames(), filepath.Base(a)) {
		if err := checkNoRemote(name, b); err != nil {
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
	_, _, err := c.stat(a)
	return err == nil
}

// IsDir reports whether p is a directory inside the root.
func (c *confinedFS) IsDir(p string) bool {
	a := c.abs(p)
	if c.inShadow(a) {
		return a == c.shadow.dir
	}
	_, info, err := c.stat(a)
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
	name, err := c.resolve(a)
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(c.fsys, name)
	if err != nil {
		return nil, fmt.Errorf("read dir %s: %w", p, err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

// Open opens a file inside the root. Shadowed files cannot be opened.
func (c *confinedFS) Open(p string) (filesys.File, error) {
	a := c.abs(p)
	if c.inShadow(a) {
		return nil, fmt.Errorf("open %s: in-memory file: %w", p, errors.ErrUnsupported)
	}
	name, err := c.resolve(a)
	if err != nil {
		return nil, err
	}
	f, err := c.fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	return readOnlyFile{f}, nil
}

// readOnlyFile is an fs.File as a filesys.File.
type readOnlyFile struct{ fs.File }

func (f readOnlyFile) Write([]byte) (int, error) { return 0, errReadOnly }

// Glob matches a pattern and keeps only matches inside the root.
func (c *confinedFS) Glob(pattern string) ([]string, error) {
	name, err := c.resolve(pattern)
	if err != nil {
		return nil, err
	}
	matches, err := fs.Glob(c.fsys, name)
	if err != nil {
		return nil, fmt.Errorf("glob %s: %w", pattern, err)
	}
	for i, m := range matches {
		matches[i] = filepath.Join(Root, filepath.FromSlash(m))
	}
	return matches, nil
}

// Walk walks a directory inside the root; links are not followed.
func (c *confinedFS) Walk(p string, fn filepath.WalkFunc) error {
	name, err := c.resolve(p)
	if err != nil {
		return err
	}
	return fs.WalkDir(c.fsys, name, func(q string, d fs.DirEntry, err error) error {
		full := filepath.Join(Root, filepath.FromSlash(q))
		if err != nil {
			return fn(full, nil, err)
		}
		info, err := d.Info()
		return fn(full, info, err)
	})
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
