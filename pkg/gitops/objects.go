package gitops

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/canarybot/canarybot/pkg/canary"
)

// encoder is a Git object that can write itself.
type encoder interface {
	Encode(plumbing.EncodedObject) error
}

// store writes o to the object database and returns its hash. The caller
// holds r.st.mu.
func (r *Repo) store(o encoder) (plumbing.Hash, error) {
	obj := r.repo.Storer.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode object: %w", err)
	}
	h, err := r.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store object: %w", err)
	}
	return h, nil
}

// writeBlob stores content as a blob. The caller holds r.st.mu.
func (r *Repo) writeBlob(content []byte) (plumbing.Hash, error) {
	obj := r.repo.Storer.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(content)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write blob: %w", err)
	}
	if _, err := w.Write(content); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write blob: %w", err)
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write blob: %w", err)
	}
	h, err := r.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	return h, nil
}

// writeTree stores the tree that is base (zero for an empty tree) with
// files (paths relative to it) written, and returns its hash. Only the
// trees along the changed paths are rewritten. A path that would replace
// a directory, a link or a submodule, or pass through anything but a
// directory, is refused. The caller holds r.st.mu.
func (r *Repo) writeTree(ctx context.Context, base plumbing.Hash, files map[string][]byte) (plumbing.Hash, error) {
	if err := ctx.Err(); err != nil {
		return plumbing.ZeroHash, err
	}
	var entries []object.TreeEntry
	if !base.IsZero() {
		t, err := r.repo.TreeObject(base)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read tree %s: %w", short(base), err)
		}
		entries = slices.Clone(t.Entries)
	}
	subdirs := map[string]map[string][]byte{}
	for p, content := range files {
		dir, rest, nested := strings.Cut(p, "/")
		if nested {
			if subdirs[dir] == nil {
				subdirs[dir] = map[string][]byte{}
			}
			subdirs[dir][rest] = content
			continue
		}
		h, err := r.writeBlob(content)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if entries, err = setEntry(entries, p, h, false); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	for dir, sub := range subdirs {
		i := slices.IndexFunc(entries, func(e object.TreeEntry) bool { return e.Name == dir })
		var cur plumbing.Hash
		if i >= 0 {
			if entries[i].Mode != filemode.Dir {
				return plumbing.ZeroHash, canary.Terminal(fmt.Errorf("%w %q: it holds a %v, not a directory",
					ErrUnsafePath, dir, entries[i].Mode))
			}
			cur = entries[i].Hash
		}
		h, err := r.writeTree(ctx, cur, sub)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("in %s: %w", dir, err)
		}
		if entries, err = setEntry(entries, dir, h, true); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	slices.SortFunc(entries, func(a, b object.TreeEntry) int { return strings.Compare(sortKey(a), sortKey(b)) })
	return r.store(&object.Tree{Entries: entries})
}

// setEntry points name at h, keeping an executable file's mode. A file
// may only replace a file.
func setEntry(entries []object.TreeEntry, name string, h plumbing.Hash, dir bool) ([]object.TreeEntry, error) {
	mode := filemode.Regular
	if dir {
		mode = filemode.Dir
	}
	for i, e := range entries {
		if e.Name != name {
			continue
		}
		switch {
		case dir:
		case e.Mode == filemode.Executable:
			mode = e.Mode
		case e.Mode != filemode.Regular && e.Mode != filemode.Deprecated:
			return nil, canary.Terminal(fmt.Errorf("%w %q: the head holds a %v there, not a file", ErrUnsafePath, name, e.Mode))
		}
		entries[i] = object.TreeEntry{Name: name, Mode: mode, Hash: h}
		return entries, nil
	}
	return append(entries, object.TreeEntry{Name: name, Mode: mode, Hash: h}), nil
}

// sortKey orders tree entries as Git does: a directory sorts as if its
// name ended in "/".
func sortKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}
