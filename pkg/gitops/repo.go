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

// Repo is the GitOps repository: a persisted working clone of one branch
// of a remote. It implements canary.Repo and embeds a Reader over the
// clone. A Repo serves one reconcile loop: Checkout and Transact share the
// work tree and lock each other out, and a TransactFunc may call the
// Reader methods; other concurrent use is unsupported, as go-git's storage
// is not safe for it. A Tree returned by Checkout stays valid until the
// next Checkout or Transact on the same Repo.
type Repo struct {
	*Reader
	dir string
	mu  sync.Mutex
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
	return &Repo{Reader: &Reader{repo: repo, opts: o, log: o.Logger}, dir: dir}, nil
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
		return canary.Terminalf("open clone %s: its origin is %s, not %s", dir, redact(urls[0]), redact(url))
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
	repo, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{
		URL:           o.URL,
		Auth:          auth,
		RemoteName:    remoteName,
		ReferenceName: plumbing.NewBranchReferenceName(o.Branch),
		SingleBranch:  true,
		Tags:          git.NoTags,
	})
	if err != nil {
		return nil, fmt.Errorf("clone %s branch %s: %w", redact(o.URL), o.Branch, err)
	}
	return repo, nil
}

// Dir is the absolute path of the working clone.
func (r *Repo) Dir() string { return r.dir }

// Checkout fetches the branch and hard-resets the working clone to its
// head, removing untracked files, so the tree is exactly the remote head.
func (r *Repo) Checkout(ctx context.Context) (canary.Tree, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checkout(ctx)
}

func (r *Repo) checkout(ctx context.Context) (canary.Tree, error) {
	head, err := r.Fetch(ctx)
	if err != nil {
		return canary.Tree{}, err
	}
	if err := r.resetTo(plumbing.NewHash(head)); err != nil {
		return canary.Tree{}, err
	}
	return canary.Tree{Dir: r.dir, Head: head}, nil
}

// resetTo points the local branch and HEAD at h and makes the work tree
// match it exactly.
func (r *Repo) resetTo(h plumbing.Hash) error {
	branch := plumbing.NewBranchReferenceName(r.opts.Branch)
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(branch, h)); err != nil {
		return fmt.Errorf("reset %s: %w", branch, err)
	}
	if err := r.repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, branch)); err != nil {
		return fmt.Errorf("reset HEAD: %w", err)
	}
	wt, err := r.repo.Worktree()
	if err != nil {
		return fmt.Errorf("open work tree: %w", err)
	}
	if err := wt.Reset(&git.ResetOptions{Commit: h, Mode: git.HardReset}); err != nil {
		return fmt.Errorf("reset work tree to %s: %w", short(h), err)
	}
	if err := wt.Clean(&git.CleanOptions{Dir: true}); err != nil {
		return fmt.Errorf("clean work tree: %w", err)
	}
	return nil
}
