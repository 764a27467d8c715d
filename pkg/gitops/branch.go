package gitops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/canarybot/canarybot/pkg/canary"
)

// ErrOwnBranch refuses a side-branch operation on the branch Transact
// writes: that branch only ever moves forward, by Transact.
var ErrOwnBranch = errors.New("refused on the branch canarybot commits to")

// PushBranch commits ch on top of base and pushes the commit to branch
// of origin, replacing what branch held there. It is for branches
// canarybot owns (a pull request's head), never the branch Transact
// writes. Pushing over git costs none of a forge's API rate limit. It
// returns the commit, or "" when ch changes nothing against base.
func (r *Repo) PushBranch(ctx context.Context, base string, ch *canary.Change, branch string) (string, error) {
	if err := r.sideBranch(branch); err != nil {
		return "", err
	}
	sha, err := r.commitChange(ctx, base, ch)
	if err != nil || sha == "" {
		return "", err
	}
	if err := r.pushRef(ctx, branch, base, sha); err != nil {
		return "", err
	}
	return sha, nil
}

// DeleteBranch deletes branch on origin; a branch already gone is no
// error.
func (r *Repo) DeleteBranch(ctx context.Context, branch string) error {
	if err := r.sideBranch(branch); err != nil {
		return err
	}
	return r.pushRef(ctx, branch, "", "")
}

func (r *Repo) sideBranch(branch string) error {
	if branch == r.opts.Branch {
		return canary.Terminal(fmt.Errorf("branch %s: %w", branch, ErrOwnBranch))
	}
	if err := plumbing.NewBranchReferenceName(branch).Validate(); err != nil || branch == "" {
		return canary.Terminal(fmt.Errorf("branch %q is not a valid branch name", branch))
	}
	return nil
}

// pushRef replaces origin's branch with sha, a commit on top of base,
// or deletes the branch when sha is "".
func (r *Repo) pushRef(ctx context.Context, branch, base, sha string) error {
	if err := r.sendPack(ctx, update{branch: branch, sha: sha, base: base}); err != nil {
		if sha == "" && isMissingRef(err) {
			return nil
		}
		return fmt.Errorf("push %s: %w", branch, redactErr(err))
	}
	return nil
}

func isMissingRef(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"unable to delete", "does not exist", "reference not found"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
