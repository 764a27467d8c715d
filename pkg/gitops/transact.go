package gitops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
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

// Transact calls fn on the branch head as last fetched, and commits and
// pushes the change fn returns. A nil change, or one whose every file
// already has identical bytes at the head, is a no-op: nothing is
// committed and the result has NoOp set and SHA the head. When the push is
// not a fast-forward, Transact fetches, calls fn again on the new head and
// retries with exponential backoff, up to opts.Retry.Attempts pushes. It
// never force-pushes. Commits are written as Git objects, with no work
// tree, so snapshots read meanwhile are never disturbed.
//
// Transactions on one Repo are serialised and grouped: those that arrive
// while a push is under way go together into the next push, each its own
// commit on top of the one before (its fn sees the tree with the earlier
// ones applied), so that many plans moving at once cost one push, not one
// each.
func (r *Repo) Transact(ctx context.Context, fn canary.TransactFunc) (canary.CommitResult, error) {
	if fn == nil {
		return canary.CommitResult{}, errors.New("transact: nil TransactFunc")
	}
	t := &txn{ctx: ctx, fn: fn, done: make(chan struct{})}
	r.qmu.Lock()
	r.queue = append(r.queue, t)
	r.qmu.Unlock()
	for {
		select {
		case <-t.done:
			return t.res, t.err
		case r.pushing <- struct{}{}:
			r.qmu.Lock()
			batch := r.queue
			r.queue = nil
			r.qmu.Unlock()
			if len(batch) > 0 {
				r.runBatch(ctx, batch)
				for _, b := range batch {
					close(b.done)
				}
			}
			<-r.pushing
		}
	}
}

// txn is one Transact waiting in a batch. Its result is written by the
// goroutine running the batch, before it closes done.
type txn struct {
	ctx  context.Context
	fn   canary.TransactFunc
	done chan struct{}
	sha  string
	res  canary.CommitResult
	err  error
}

// runBatch commits each transaction of batch on top of the one before and
// pushes them together, redoing them on the new head when the push is not
// a fast-forward. The caller holds r.pushing.
func (r *Repo) runBatch(ctx context.Context, batch []*txn) {
	head, err := r.Head(ctx)
	if err != nil {
		head, err = r.Fetch(ctx)
	}
	if err != nil {
		fail(batch, err)
		return
	}
	delay := r.opts.Retry.Initial
	for attempt := 1; ; attempt++ {
		tip, committed := r.commitAll(head, batch)
		if len(committed) == 0 {
			return
		}
		for _, t := range committed {
			t.res.Attempts++
		}
		err := r.push(ctx, head, tip)
		if err == nil {
			for _, t := range committed {
				t.res.SHA = t.sha
			}
			r.log.Debug("pushed", "commit", tip, "branch", r.opts.Branch, "commits", len(committed), "attempt", attempt)
			return
		}
		if errors.Is(err, ErrNonFastForward) && attempt >= r.opts.Retry.Attempts {
			err = fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		if !errors.Is(err, ErrNonFastForward) || attempt >= r.opts.Retry.Attempts {
			fail(committed, err)
			return
		}
		r.log.Info("push was not a fast-forward; retrying on the new head",
			"branch", r.opts.Branch, "attempt", attempt, "commits", len(committed), "delay", delay)
		if err := sleep(ctx, r.opts.Clock, delay); err != nil {
			fail(committed, fmt.Errorf("wait to retry push %s: %w", r.opts.Branch, err))
			return
		}
		delay = r.opts.Retry.nextDelay(delay)
		if head, err = r.Fetch(ctx); err != nil {
			fail(committed, err)
			return
		}
		batch = committed
	}
}

// commitAll runs each transaction on the tip so far and commits its
// change there. A transaction whose fn fails, or whose change is a no-op,
// is settled; the others come back in order with their commits, the last
// one at tip.
func (r *Repo) commitAll(head string, batch []*txn) (tip string, committed []*txn) {
	tip = head
	for _, t := range batch {
		t.sha, t.err = "", nil
		if err := t.ctx.Err(); err != nil {
			t.err = err
			continue
		}
		tree, err := r.Tree(t.ctx, tip)
		if err != nil {
			t.err = err
			continue
		}
		ch, err := t.fn(t.ctx, tree)
		if err != nil {
			t.err = fmt.Errorf("compute change at %s: %w", tree.Head, err)
			continue
		}
		sha, err := r.commitChange(t.ctx, tree.Head, ch)
		switch {
		case err != nil:
			t.err = err
		case sha == "":
			t.res.NoOp, t.res.SHA = true, tree.Head
		default:
			t.sha, tip = sha, sha
			committed = append(committed, t)
		}
	}
	return tip, committed
}

// fail settles every transaction of ts with err.
func fail(ts []*txn, err error) {
	for _, t := range ts {
		t.err = err
	}
}

// commitChange writes the files of ch that differ from head as Git
// objects and commits them on top of head. It returns "" when nothing
// differs.
func (r *Repo) commitChange(ctx context.Context, head string, ch *canary.Change) (string, error) {
	if ch == nil {
		return "", nil
	}
	msg, err := FormatMessage(ch)
	if err != nil {
		return "", err
	}
	paths, _, err := r.Changes(ctx, head, ch.Files)
	if err != nil || len(paths) == 0 {
		return "", err
	}
	changed := make(map[string][]byte, len(paths))
	for _, p := range paths {
		changed[p] = ch.Files[p]
	}
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	base, err := r.commit(ctx, head)
	if err != nil {
		return "", err
	}
	tree, err := r.writeTree(ctx, base.TreeHash, changed)
	if err != nil {
		return "", err
	}
	sig := object.Signature{Name: r.opts.AuthorName, Email: r.opts.AuthorEmail, When: r.opts.Clock.Now()}
	c := &object.Commit{Author: sig, Committer: sig, Message: msg, TreeHash: tree, ParentHashes: []plumbing.Hash{base.Hash}}
	h, err := r.store(c)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", strings.SplitN(msg, "\n", 2)[0], err)
	}
	return h.String(), nil
}

// changedPaths validates every path of files, then returns, sorted, those
// whose bytes differ from the head's. The caller holds r.st.mu.
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

// push moves origin's branch from head, where the batch began, to sha,
// never forced: a compare-and-swap that the remote refuses unless its
// branch still holds head. On success the tracking ref moves to sha, so
// the next Transact builds on it without a fetch.
func (r *Repo) push(ctx context.Context, head, sha string) error {
	err := r.sendPack(ctx, update{branch: r.opts.Branch, sha: sha, base: head, expect: head})
	switch {
	case err == nil:
	case isNonFastForward(err):
		return fmt.Errorf("push %s: %w", r.opts.Branch, redactErr(&nonFastForward{err: err}))
	default:
		return fmt.Errorf("push %s: %w", r.opts.Branch, redactErr(err))
	}
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(r.trackingRef(), plumbing.NewHash(sha))); err != nil {
		return fmt.Errorf("pushed %s, but could not move %s: %w", short(plumbing.NewHash(sha)), r.trackingRef(), err)
	}
	return nil
}

// isNonFastForward recognizes go-git's local check and the remote's
// refusals of a ref that moved since it was advertised.
func isNonFastForward(err error) bool {
	if errors.Is(err, ErrNonFastForward) || errors.Is(err, git.ErrNonFastForwardUpdate) {
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
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
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
