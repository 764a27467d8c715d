package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/canarybot/canarybot/pkg/canary"
)

var _ canary.Repo = (*Repo)(nil)

// Repo is the GitOps repository: a persisted clone of one branch of a
// remote, used through Git objects only (new clones are bare). It
// implements canary.Repo and embeds a Reader over the clone. A Repo is
// safe for concurrent use by any number of plans: reads go through
// immutable snapshots, and commits to the branch are serialised, one
// Transact at a time. A Tree returned by Checkout stays valid forever.
type Repo struct {
	*Reader
	dir string
	// pushing, a semaphore of one, serialises pushes: commits to the
	// branch go one batch at a time. A Transact whose transaction another
	// goroutine's batch settled returns without waiting for it.
	pushing chan struct{}
	// qmu guards queue, the transactions waiting for the next batch.
	qmu   sync.Mutex
	queue []*txn
}

// Open reuses the clone in opts.Dir when it is a clone of opts.URL, or
// clones opts.Branch into it when the directory is absent or empty. It
// does not fetch; Checkout and Transact do.
func Open(ctx context.Context, opts Options) (*Repo, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		return nil, errors.New("gitops options: Dir is required")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolve dir %s: %w", o.Dir, err)
	}
	repo, err := git.PlainOpen(dir)
	switch {
	case err == nil:
		if err := checkOrigin(repo, dir, o.URL); err != nil {
			return nil, err
		}
		o.Logger.Debug("reusing clone", "dir", dir)
	case errors.Is(err, git.ErrRepositoryNotExists):
		if repo, err = clone(ctx, dir, o); err != nil {
			return nil, err
		}
		o.Logger.Debug("cloned", "dir", dir, "branch", o.Branch)
	default:
		return nil, fmt.Errorf("open clone %s: %w", dir, err)
	}
	return &Repo{Reader: newReader(repo, o), dir: dir, pushing: make(chan struct{}, 1)}, nil
}

// checkOrigin verifies that an existing clone's origin is url.
func checkOrigin(repo *git.Repository, dir, url string) error {
	remote, err := repo.Remote(remoteName)
	if err != nil {
		return fmt.Errorf("open clone %s: remote %s: %w", dir, remoteName, err)
	}
	urls := remote.Config().URLs
	if len(urls) == 0 {
		return canary.Terminalf("open clone %s: remote %s has no URL", dir, remoteName)
	}
	if urls[0] != url {
		return canary.Terminalf("open clone %s: its origin is %s, not %s", dir, RedactURL(urls[0]), RedactURL(url))
	}
	return nil
}

// clone clones the branch into dir, which must be absent or empty.
func clone(ctx context.Context, dir string, o Options) (*git.Repository, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read dir %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return nil, canary.Terminalf("clone into %s: directory is not empty and not a git clone", dir)
	}
	auth, err := o.auth(ctx)
	if err != nil {
		return nil, err
	}
	repo, err := git.PlainCloneContext(ctx, dir, true, &git.CloneOptions{
		URL:           o.URL,
		Auth:          auth,
		RemoteName:    remoteName,
		ReferenceName: plumbing.NewBranchReferenceName(o.Branch),
		SingleBranch:  true,
		Tags:          git.NoTags,
	})
	if err != nil {
		return nil, fmt.Errorf("clone %s branch %s: %w", RedactURL(o.URL), o.Branch, redactErr(err))
	}
	return repo, nil
}

// Dir is the absolute path of the clone.
func (r *Repo) Dir() string { return r.dir }

// Checkout fetches the branch and returns its head as an immutable
// snapshot. Nothing on disk but the object store changes.
func (r *Repo) Checkout(ctx context.Context) (canary.Tree, error) {
	head, err := r.Fetch(ctx)
	if err != nil {
		return canary.Tree{}, err
	}
	return r.Tree(ctx, head)
}
