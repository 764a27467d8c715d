package gitops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/canarybot/canarybot/pkg/canary"
)

// ErrNonFastForward marks a push the remote refused because the branch
// moved on. Transact retries it on the new head; it surfaces only when
// the retries run out.
var ErrNonFastForward = errors.New("non-fast-forward")

// nonFastForward keeps the transport's message and matches
// ErrNonFastForward.
type nonFastForward struct{ err error }

func (e *nonFastForward) Error() string        { return e.err.Error() }
func (e *nonFastForward) Unwrap() error        { return e.err }
func (e *nonFastForward) Is(target error) bool { return target == ErrNonFastForward }

// Transact checks out the branch head, calls fn on it, and commits and
// pushes the change fn returns. A nil change, or one whose every file
// already has identical bytes at the head, is a no-op: nothing is
// committed and the result has NoOp set and SHA the head. When the push is
// not a fast-forward, Transact fetches, calls fn again on the new head and
// retries with exponential backoff, up to opts.Retry.Attempts pushes. It
// never force-pushes.
func (r *Repo) Transact(ctx context.Context, fn canary.TransactFunc) (canary.CommitResult, error) {
	if fn == nil {
		return canary.CommitResult{}, errors.New("transact: nil TransactFunc")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var res canary.CommitResult
	delay := r.opts.Retry.Initial
	for {
		tree, err := r.checkout(ctx)
		if err != nil {
			return res, err
		}
		ch, err := fn(ctx, tree)
		if err != nil {
			return res, fmt.Errorf("compute change at %s: %w", tree.Head, err)
		}
		sha, err := r.commitChange(ctx, tree, ch)
		if err != nil {
			return res, err
		}
		if sha == "" {
			res.NoOp, res.SHA = true, tree.Head
			return res, nil
		}
		res.Attempts++
		err = r.push(ctx)
		if err == nil {
			res.SHA = sha
			r.log.Debug("pushed", "commit", sha, "branch", r.opts.Branch, "attempts", res.Attempts)
			return res, nil
		}
		if !errors.Is(err, ErrNonFastForward) {
			return res, err
		}
		if res.Attempts >= r.opts.Retry.Attempts {
			return res, fmt.Errorf("%w (gave up after %d attempts)", err, res.Attempts)
		}
		r.log.Info("push was not a fast-forward; retrying on the new head",
			"branch", r.opts.Branch, "attempt", res.Attempts, "delay", delay)
		if err := sleep(ctx, r.opts.Clock, delay); err != nil {
			return res, fmt.Errorf("wait to retry push %s: %w", r.opts.Branch, err)
		}
		delay = r.opts.Retry.nextDelay(delay)
	}
}

// commitChange writes the files of ch that differ from tree's head, stages
// exactly those, and commits them. It returns "" when nothing differs.
func (r *Repo) commitChange(ctx context.Context, tree canary.Tree, ch *canary.Change) (string, error) {
	if ch == nil {
		return "", nil
	}
	msg, err := FormatMessage(ch)
	if err != nil {
		return "", err
	}
	paths, err := r.changedPaths(tree.Head, ch.Files)
	if err != nil || len(paths) == 0 {
		return "", err
	}
	wt, err := r.repo.Worktree()
	if err != nil {
		return "", fmt.Errorf("open work tree: %w", err)
	}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if err := writeFile(r.dir, p, ch.Files[p]); err != nil {
			return "", err
		}
		if err := wt.AddWithOptions(&git.AddOptions{Path: p, SkipStatus: true}); err != nil {
			return "", fmt.Errorf("stage %s: %w", p, err)
		}
	}
	sig := &object.Signature{Name: r.opts.AuthorName, Email: r.opts.AuthorEmail, When: r.opts.Clock.Now()}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", strings.SplitN(msg, "\n", 2)[0], err)
	}
	return h.String(), nil
}

// changedPaths validates every path of files, then returns, sorted, those
// whose bytes differ from the head's.
func (r *Repo) changedPaths(head string, files map[string][]byte) ([]string, error) {
	paths := make([]string, 0, len(files))
	for p := range files {
		if err := CheckPath(p); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	c, err := r.repo.CommitObject(plumbing.NewHash(head))
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", head, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", head, err)
	}
	var changed []string
	for _, p := range paths {
		cur, err := entryAt(tree, p)
		if err != nil {
			return nil, err
		}
		switch cur.mode {
		case filemode.Empty, filemode.Regular, filemode.Executable, filemode.Deprecated:
		default:
			return nil, canary.Terminal(fmt.Errorf("%w %q: the head holds a %v there, not a file",
				ErrUnsafePath, p, cur.mode))
		}
		want := plumbing.ComputeHash(plumbing.BlobObject, files[p])
		if cur.mode == filemode.Empty || cur.hash != want {
			changed = append(changed, p)
		}
	}
	return changed, nil
}

// push pushes the local branch to the same branch of origin, never forced.
func (r *Repo) push(ctx context.Context) error {
	auth, err := r.opts.auth(ctx)
	if err != nil {
		return fmt.Errorf("push %s: %w", r.opts.Branch, err)
	}
	ref := plumbing.NewBranchReferenceName(r.opts.Branch)
	err = r.repo.PushContext(ctx, &git.PushOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{config.RefSpec(ref + ":" + ref)},
		Auth:       auth,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case isNonFastForward(err):
		return fmt.Errorf("push %s: %w", r.opts.Branch, &nonFastForward{err: err})
	default:
		return fmt.Errorf("push %s: %w", r.opts.Branch, err)
	}
}

// isNonFastForward recognizes go-git's local check and the remote's
// refusals of a ref that moved since it was advertised.
func isNonFastForward(err error) bool {
	if errors.Is(err, git.ErrNonFastForwardUpdate) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"non-fast-forward", "fetch first", "cannot lock ref", "failed to update ref", "stale info"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// Changes returns, sorted, the paths of files whose bytes differ from
// head's, and head's tree hash, so that a caller publishing the change
// another way (GitHub's API) writes exactly what Transact would.
func (r *Repo) Changes(ctx context.Context, head string, files map[string][]byte) (paths []string, tree string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.commit(ctx, head)
	if err != nil {
		return nil, "", err
	}
	paths, err = r.changedPaths(c.Hash.String(), files)
	if err != nil {
		return nil, "", err
	}
	return paths, c.TreeHash.String(), nil
}
