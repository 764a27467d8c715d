package gitops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"path"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// ErrUnknownRevision marks a revision that is not in the local object
// store; fetching may make it known.
var ErrUnknownRevision = errors.New("unknown revision")

// Reader reads history and files of one branch of a remote. Its methods
// take a revision: a commit SHA, a ref name, or "" for the branch head as
// last fetched. A Reader is not safe for concurrent Fetch.
type Reader struct {
	repo *git.Repository
	opts Options
	log  *slog.Logger
}

// OpenReadOnly clones opts.Branch of opts.URL into memory, with no working
// tree and nothing on disk, for read-only use such as `canarybot status`.
// opts.Dir and the author fields are ignored.
func OpenReadOnly(ctx context.Context, opts Options) (*Reader, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	auth, err := o.auth(ctx)
	if err != nil {
		return nil, err
	}
	repo, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{
		URL:           o.URL,
		Auth:          auth,
		RemoteName:    remoteName,
		ReferenceName: plumbing.NewBranchReferenceName(o.Branch),
		SingleBranch:  true,
		NoCheckout:    true,
		Tags:          git.NoTags,
	})
	if err != nil {
		return nil, fmt.Errorf("clone %s branch %s: %w", redact(o.URL), o.Branch, err)
	}
	return &Reader{repo: repo, opts: o, log: o.Logger}, nil
}

// trackingRef is refs/remotes/origin/<branch>.
func (r *Reader) trackingRef() plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName(remoteName, r.opts.Branch)
}

// Fetch updates the branch from the remote and returns its head SHA.
func (r *Reader) Fetch(ctx context.Context) (string, error) {
	auth, err := r.opts.auth(ctx)
	if err != nil {
		return "", err
	}
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", plumbing.NewBranchReferenceName(r.opts.Branch), r.trackingRef()))
	err = r.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{spec},
		Auth:       auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return "", fmt.Errorf("fetch %s: %w", r.opts.Branch, err)
	}
	return r.Head(ctx)
}

// Head returns the branch head as last fetched, without network access.
func (r *Reader) Head(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	ref, err := r.repo.Reference(r.trackingRef(), true)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", r.trackingRef(), err)
	}
	return ref.Hash().String(), nil
}

// commit resolves rev ("" for the branch head) to a commit.
func (r *Reader) commit(ctx context.Context, rev string) (*object.Commit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if rev == "" {
		rev = r.trackingRef().String()
	}
	h, err := r.repo.ResolveRevision(plumbing.Revision(rev))
	if errors.Is(err, plumbing.ErrReferenceNotFound) || errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("resolve %s: %w", rev, ErrUnknownRevision)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", rev, err)
	}
	c, err := r.repo.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	return c, nil
}

// ReadFile returns the content of the file at repo path p in rev, without
// a checkout. A missing file is an error wrapping fs.ErrNotExist.
func (r *Reader) ReadFile(ctx context.Context, rev, p string) ([]byte, error) {
	c, err := r.commit(ctx, rev)
	if err != nil {
		return nil, err
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", short(c.Hash), err)
	}
	e, err := entryAt(tree, strings.Trim(path.Clean("/"+p), "/"))
	if err != nil {
		return nil, err
	}
	switch e.mode {
	case filemode.Empty:
		return nil, fmt.Errorf("read %s at %s: %w", p, short(c.Hash), fs.ErrNotExist)
	case filemode.Dir, filemode.Submodule:
		return nil, fmt.Errorf("read %s at %s: is a %v, not a file", p, short(c.Hash), e.mode)
	}
	blob, err := r.repo.BlobObject(e.hash)
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", p, short(c.Hash), err)
	}
	rd, err := blob.Reader()
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", p, short(c.Hash), err)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", p, short(c.Hash), err)
	}
	return b, nil
}

// ListFiles returns the repo paths of all files under dir in rev,
// recursively and sorted. dir "" or "." lists the whole tree; a missing
// directory lists nothing.
func (r *Reader) ListFiles(ctx context.Context, rev, dir string) ([]string, error) {
	c, err := r.commit(ctx, rev)
	if err != nil {
		return nil, err
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", short(c.Hash), err)
	}
	dir = strings.Trim(path.Clean("/"+dir), "/")
	if dir != "" {
		e, err := entryAt(tree, dir)
		if err != nil || e.mode != filemode.Dir {
			return nil, err // absent, or not a directory: no files under it
		}
		if tree, err = r.repo.TreeObject(e.hash); err != nil {
			return nil, fmt.Errorf("list %s at %s: %w", dir, short(c.Hash), err)
		}
	}
	var files []string
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		name, entry, err := walker.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list %s at %s: %w", dir, short(c.Hash), err)
		}
		if entry.Mode == filemode.Dir || entry.Mode == filemode.Submodule {
			continue
		}
		files = append(files, path.Join(dir, name))
	}
	sort.Strings(files)
	return files, nil
}

// redact hides any password in a URL meant for a message.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// short abbreviates a hash for messages.
func short(h plumbing.Hash) string { return h.String()[:12] }
