package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/canarybot/canarybot/pkg/canary"
)

// ErrUnknownRevision marks a revision that is not in the local object
// store; fetching may make it known.
var ErrUnknownRevision = errors.New("unknown revision")

// Reader reads history and files of one branch of a remote. Its methods
// take a revision: a commit SHA, a ref name, or "" for the branch head as
// last fetched. A Reader is safe for concurrent use: every access to the
// object store is serialised, and files are read through Snapshots.
type Reader struct {
	repo *git.Repository
	st   *store
	opts Options
	log  *slog.Logger
	// touched caches LastCommit by paths; guarded by st.mu.
	touched map[string]touchEntry
}

func newReader(repo *git.Repository, o Options) *Reader {
	return &Reader{repo: repo, st: newStore(repo), opts: o, log: o.Logger, touched: map[string]touchEntry{}}
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
		return nil, fmt.Errorf("clone %s branch %s: %w", RedactURL(o.URL), o.Branch, redactErr(err))
	}
	return newReader(repo, o), nil
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
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	err = r.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{spec},
		Auth:       auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return "", fmt.Errorf("fetch %s: %w", r.opts.Branch, redactErr(err))
	}
	return r.head(ctx)
}

// Head returns the branch head as last fetched, without network access.
func (r *Reader) Head(ctx context.Context) (string, error) {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	return r.head(ctx)
}

func (r *Reader) head(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	ref, err := r.repo.Reference(r.trackingRef(), true)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", r.trackingRef(), err)
	}
	return ref.Hash().String(), nil
}

// commit resolves rev ("" for the branch head) to a commit. The caller
// holds r.st.mu.
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

// Snapshot returns the files of rev ("" for the branch head) as an
// immutable fs.FS read from Git objects.
func (r *Reader) Snapshot(ctx context.Context, rev string) (*Snapshot, error) {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	c, err := r.commit(ctx, rev)
	if err != nil {
		return nil, err
	}
	return snapshotOf(r.st, c), nil
}

// Tree returns rev ("" for the branch head) as a canary.Tree, without
// touching any work tree.
func (r *Reader) Tree(ctx context.Context, rev string) (canary.Tree, error) {
	s, err := r.Snapshot(ctx, rev)
	if err != nil {
		return canary.Tree{}, err
	}
	return canary.Tree{Head: s.Head(), FS: s}, nil
}

// ReadFile returns the content of the file at repo path p in rev, without
// a checkout. A missing file is an error wrapping fs.ErrNotExist; a
// symbolic link on the way is refused with ErrSymlink.
func (r *Reader) ReadFile(ctx context.Context, rev, p string) ([]byte, error) {
	s, err := r.Snapshot(ctx, rev)
	if err != nil {
		return nil, err
	}
	b, err := s.ReadFile(cleanRepoPath(p))
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", p, short(s.head), err)
	}
	return b, nil
}

// ListFiles returns the repo paths of all files under dir in rev,
// recursively and sorted. dir "" or "." lists the whole tree; a missing
// directory lists nothing. Links are listed but not followed.
func (r *Reader) ListFiles(ctx context.Context, rev, dir string) ([]string, error) {
	s, err := r.Snapshot(ctx, rev)
	if err != nil {
		return nil, err
	}
	dir = cleanRepoPath(dir)
	var files []string
	err = fs.WalkDir(s, dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist) && p == dir:
			return fs.SkipAll
		case err != nil:
			return err
		case p == dir && !d.IsDir():
			return fs.SkipAll
		case !d.IsDir():
			files = append(files, p)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list %s at %s: %w", dir, short(s.head), err)
	}
	sort.Strings(files)
	return files, nil
}

// cleanRepoPath turns "", "/x/", "x/../y" into fs.FS form ("." for the root).
func cleanRepoPath(p string) string {
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

// short abbreviates a hash for messages.
func short(h plumbing.Hash) string { return h.String()[:12] }
