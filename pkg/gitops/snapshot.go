package gitops

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrSymlink marks a symbolic link (or submodule) in the repo where a file
// or directory is read. Snapshots never follow links: a link committed to
// the GitOps repo cannot make the bot read outside it.
var ErrSymlink = errors.New("symbolic link refused")

// MaxBlobBytes bounds any single file a snapshot hands out. Plans and
// state are bounded further by their readers.
const MaxBlobBytes = 8 << 20

// store is the object database of one clone, shared by its Reader and every
// Snapshot of it. go-git's storage is not safe for concurrent use, so every
// access goes through mu. Trees and small blobs are cached by hash: they are
// immutable, so a cached value never goes stale.
type store struct {
	mu    sync.Mutex
	repo  *git.Repository
	trees map[plumbing.Hash][]treeEntry
	// treeEntries counts the entries of the cached trees.
	treeEntries int
	blobs       map[plumbing.Hash][]byte
	// blobBytes is the size of the cached blobs.
	blobBytes int
	// changes caches each commit's changed paths (changes.go).
	changes map[plumbing.Hash][]string
	// commits caches what history walks need of each commit (commits.go).
	commits map[plumbing.Hash]commitMeta
}

// treeEntry is one entry of a tree object, sorted by name.
type treeEntry struct {
	name string
	mode filemode.FileMode
	hash plumbing.Hash
}

const (
	// maxCachedTreeEntries bounds the tree cache by entries, not trees:
	// a directory of a thousand state files is rewritten by every commit.
	maxCachedTreeEntries = 1 << 19
	maxCachedBlob        = 256 << 10
	maxCachedBlobBytes   = 64 << 20
)

func newStore(repo *git.Repository) *store {
	return &store{repo: repo, trees: map[plumbing.Hash][]treeEntry{}, blobs: map[plumbing.Hash][]byte{},
		changes: map[plumbing.Hash][]string{}, commits: map[plumbing.Hash]commitMeta{}}
}

// tree returns the entries of tree object h. The caller holds s.mu.
func (s *store) tree(h plumbing.Hash) ([]treeEntry, error) {
	if es, ok := s.trees[h]; ok {
		return es, nil
	}
	t, err := s.repo.TreeObject(h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", short(h), err)
	}
	es := make([]treeEntry, len(t.Entries))
	for i, e := range t.Entries {
		es[i] = treeEntry{name: e.Name, mode: e.Mode, hash: e.Hash}
	}
	slices.SortFunc(es, func(a, b treeEntry) int { return strings.Compare(a.name, b.name) })
	if s.treeEntries+len(es) > maxCachedTreeEntries {
		clear(s.trees)
		s.treeEntries = 0
	}
	s.trees[h] = es
	s.treeEntries += len(es)
	return es, nil
}

// blob returns the content of blob h, refusing one over limit bytes
// before reading it. The caller holds s.mu.
func (s *store) blob(h plumbing.Hash, limit int64) ([]byte, error) {
	if b, ok := s.blobs[h]; ok {
		return b, nil
	}
	o, err := s.repo.BlobObject(h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", short(h), err)
	}
	if o.Size > limit {
		return nil, fmt.Errorf("blob %s: %d bytes is over the %d-byte limit", short(h), o.Size, limit)
	}
	rd, err := o.Reader()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", short(h), err)
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", short(h), err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("blob %s: over the %d-byte limit", short(h), limit)
	}
	if len(b) <= maxCachedBlob {
		if s.blobBytes+len(b) > maxCachedBlobBytes {
			clear(s.blobs)
			s.blobBytes = 0
		}
		s.blobs[h] = b
		s.blobBytes += len(b)
	}
	return b, nil
}

// Snapshot is the file tree of one commit, read from Git objects: nothing
// touches a work tree, so any number of goroutines may read any number of
// snapshots while the clone fetches and commits. It implements fs.FS,
// fs.ReadFileFS, fs.ReadDirFS and fs.StatFS. Symbolic links and
// submodules are refused with ErrSymlink; files over MaxBlobBytes with
// canary.ErrTooLarge's message.
type Snapshot struct {
	st   *store
	head plumbing.Hash
	root plumbing.Hash
}

var (
	_ fs.ReadFileFS = (*Snapshot)(nil)
	_ fs.ReadDirFS  = (*Snapshot)(nil)
	_ fs.StatFS     = (*Snapshot)(nil)
)

// Head is the commit the snapshot shows.
func (s *Snapshot) Head() string { return s.head.String() }

// lookup resolves name to its entry, refusing links on the way.
func (s *Snapshot) lookup(op, name string) (treeEntry, error) {
	if !fs.ValidPath(name) {
		return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	cur := treeEntry{name: ".", mode: filemode.Dir, hash: s.root}
	if name == "." {
		return cur, nil
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	parts := strings.Split(name, "/")
	for i, part := range parts {
		if cur.mode != filemode.Dir {
			return treeEntry{}, &fs.PathError{Op: op, Path: name,
				Err: fmt.Errorf("%s is not a directory: %w", path.Join(parts[:i]...), fs.ErrNotExist)}
		}
		es, err := s.st.tree(cur.hash)
		if err != nil {
			return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		j, ok := slices.BinarySearchFunc(es, part, func(e treeEntry, n string) int { return strings.Compare(e.name, n) })
		if !ok {
			return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		cur = es[j]
		if cur.mode == filemode.Symlink || cur.mode == filemode.Submodule {
			return treeEntry{}, &fs.PathError{Op: op, Path: name,
				Err: fmt.Errorf("%s: %w", path.Join(parts[:i+1]...), ErrSymlink)}
		}
	}
	return cur, nil
}

// ReadFile returns a copy of the file at name.
func (s *Snapshot) ReadFile(name string) ([]byte, error) {
	e, err := s.lookup("read", name)
	if err != nil {
		return nil, err
	}
	if e.mode == filemode.Dir {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	s.st.mu.Lock()
	b, err := s.st.blob(e.hash, MaxBlobBytes)
	s.st.mu.Unlock()
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return bytes.Clone(b), nil
}

// Stat describes the file or directory at name.
func (s *Snapshot) Stat(name string) (fs.FileInfo, error) {
	e, err := s.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return s.info(path.Base(name), e)
}

// info describes e; a file's size comes from its object header.
func (s *Snapshot) info(name string, e treeEntry) (fs.FileInfo, error) {
	fi := fileInfo{name: name, mode: e.mode}
	if e.mode == filemode.Dir {
		return fi, nil
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if b, ok := s.st.blobs[e.hash]; ok {
		fi.size = int64(len(b))
		return fi, nil
	}
	size, err := s.st.repo.Storer.EncodedObjectSize(e.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	fi.size = size
	return fi, nil
}

// ReadDir lists the directory at name, sorted by name. Links are listed
// (with fs.ModeSymlink) but cannot be opened.
func (s *Snapshot) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := s.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if e.mode != filemode.Dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	s.st.mu.Lock()
	es, err := s.st.tree(e.hash)
	s.st.mu.Unlock()
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out := make([]fs.DirEntry, len(es))
	for i, c := range es {
		out[i] = dirEntry{snap: s, entry: c}
	}
	return out, nil
}

// Open opens the file or directory at name.
func (s *Snapshot) Open(name string) (fs.File, error) {
	e, err := s.lookup("open", name)
	if err != nil {
		return nil, err
	}
	fi, err := s.info(path.Base(name), e)
	if err != nil {
		return nil, err
	}
	if e.mode == filemode.Dir {
		es, err := s.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return &openDir{info: fi, entries: es}, nil
	}
	return &openFile{snap: s, name: name, info: fi}, nil
}

type fileInfo struct {
	name string
	mode filemode.FileMode
	size int64
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return i.mode == filemode.Dir }
func (i fileInfo) Sys() any           { return nil }
func (i fileInfo) Mode() fs.FileMode {
	switch i.mode {
	case filemode.Dir:
		return fs.ModeDir | 0o555
	case filemode.Symlink:
		return fs.ModeSymlink | 0o444
	case filemode.Submodule:
		return fs.ModeIrregular
	case filemode.Executable:
		return 0o555
	}
	return 0o444
}

type dirEntry struct {
	snap  *Snapshot
	entry treeEntry
}

func (d dirEntry) Name() string               { return d.entry.name }
func (d dirEntry) IsDir() bool                { return d.entry.mode == filemode.Dir }
func (d dirEntry) Type() fs.FileMode          { return fileInfo{mode: d.entry.mode}.Mode().Type() }
func (d dirEntry) Info() (fs.FileInfo, error) { return d.snap.info(d.entry.name, d.entry) }

// openFile reads its content on the first Read, so that a Stat (to check
// the size) costs no blob read.
type openFile struct {
	snap *Snapshot
	name string
	info fs.FileInfo
	rd   *bytes.Reader
}

func (f *openFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *openFile) Close() error               { return nil }
func (f *openFile) Read(p []byte) (int, error) {
	if f.rd == nil {
		b, err := f.snap.ReadFile(f.name)
		if err != nil {
			return 0, err
		}
		f.rd = bytes.NewReader(b)
	}
	return f.rd.Read(p)
}

type openDir struct {
	info    fs.FileInfo
	entries []fs.DirEntry
	off     int
}

func (d *openDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *openDir) Close() error               { return nil }
func (d *openDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.Name(), Err: errors.New("is a directory")}
}

func (d *openDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.off += n
	return rest[:n], nil
}

// snapshotOf returns the snapshot of commit c. The caller holds st.mu.
func snapshotOf(st *store, c *object.Commit) *Snapshot {
	return &Snapshot{st: st, head: c.Hash, root: c.TreeHash}
}
