package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// Merge methods GitHub offers.
const (
	MergeSquash = "squash"
	MergeMerge  = "merge"
	MergeRebase = "rebase"
)

// CheckName is the check run canarybot puts on every PR it opens.
const CheckName = "canarybot/gates"

// Labels canarybot puts on its PRs.
const (
	LabelBot    = "canarybot"
	LabelRevert = "canarybot:revert"
)

// ErrMergeBlocked means GitHub refused the merge for now (required checks
// pending, branch protection, a conflict). Transact reports it as a
// pending result, not an error: the engine looks again on a later tick.
var ErrMergeBlocked = errors.New("merge blocked")

// Local is the clone of the GitOps repo the publisher needs: a checkout
// of the base branch, history queries, and pushing the PR branches
// canarybot owns (over git, which costs no API rate limit).
type Local interface {
	Checkout(ctx context.Context) (canary.Tree, error)
	PushBranch(ctx context.Context, base string, ch *canary.Change, branch string) (string, error)
	DeleteBranch(ctx context.Context, branch string) error
	LastCommit(ctx context.Context, head string, paths ...string) (string, error)
	Contains(ctx context.Context, rev, ancestor string) (bool, error)
	CommitTime(ctx context.Context, sha string) (time.Time, error)
}

var _ Local = (*gitops.Repo)(nil)

// Publisher writes canarybot's transitions to GitHub as pull requests and
// merges them: it implements canary.Repo and canary.Approvals. A PR's
// commit is pushed to its branch over git, which spends none of the
// installation's API rate limit; the base branch moves only by GitHub
// merging the PR, so with squash (the default) or rebase every commit on
// it is made, and signed, by GitHub. Every step is a PR from canarybot/<plan>/<short digest>:
// steps that need no approval, and reverts, are merged at once; a
// pause-until-approved step stays open until a reviewer with write access
// approves it (or comments /canarybot promote).
type Publisher struct {
	GH          *gh.Client
	Owner, Repo string
	Base        string
	Local       Local
	Reviews     *Reviews
	MergeMethod string
	// RevertNeedsApproval keeps revert PRs open until approved. Off by
	// default: a bad canary is reverted at once.
	RevertNeedsApproval bool
	Log                 *slog.Logger
}

var (
	_ canary.Repo      = (*Publisher)(nil)
	_ canary.Approvals = (*Publisher)(nil)
)

// Checkout checks out the base branch.
func (p *Publisher) Checkout(ctx context.Context) (canary.Tree, error) { return p.Local.Checkout(ctx) }

// LastCommit finds the newest commit on the base branch touching paths.
func (p *Publisher) LastCommit(ctx context.Context, head string, paths ...string) (string, error) {
	return p.Local.LastCommit(ctx, head, paths...)
}

// CommitTime is when sha landed on the base branch (GitHub's merge time).
func (p *Publisher) CommitTime(ctx context.Context, sha string) (time.Time, error) {
	return p.Local.CommitTime(ctx, sha)
}

// Contains reports whether ancestor is reachable from rev.
func (p *Publisher) Contains(ctx context.Context, rev, ancestor string) (bool, error) {
	return p.Local.Contains(ctx, rev, ancestor)
}

// Transact computes the change on the base head, publishes it as a PR,
// and merges it, returning the commit the base branch now points at.
func (p *Publisher) Transact(ctx context.Context, fn canary.TransactFunc) (canary.CommitResult, error) {
	for attempt := 1; ; attempt++ {
		res, err := p.transactOnce(ctx, fn)
		res.Attempts = attempt
		if errors.Is(err, errHeadMoved) && attempt < 3 {
			continue
		}
		return res, err
	}
}

var errHeadMoved = errors.New("PR head moved during merge")

func (p *Publisher) transactOnce(ctx context.Context, fn canary.TransactFunc) (canary.CommitResult, error) {
	t, ch, m, err := p.compute(ctx, fn, -1)
	if err != nil || ch == nil {
		return canary.CommitResult{SHA: t.Head, NoOp: ch == nil}, err
	}
	pr, head, parent, old, err := p.reuse(ctx, t, m)
	if err != nil {
		return canary.CommitResult{}, err
	}
	fresh := parent == t.Head
	if pr != nil && old.Approves >= 0 {
		// The approved change itself: merge exactly the reviewed head. When
		// the base moved under it and the move touched the files it
		// changes, the reviewed diff is not what would land: propose it
		// again for review. Other commits (a neighbour plan's steps, a
		// human's unrelated edit) leave the approval standing.
		if !fresh {
			touched, err := p.touchedSince(ctx, t.Head, parent, ch)
			if err != nil {
				return canary.CommitResult{}, err
			}
			if touched {
				return p.reRequest(ctx, t, ch, m, old, pr)
			}
		}
		ok, err := p.Reviews.Approved(ctx, pr)
		if err != nil {
			return canary.CommitResult{}, err
		}
		if !ok {
			return canary.CommitResult{Pending: fmt.Sprintf("PR #%d waits for approval of its head %s", pr.GetNumber(), short(head))}, nil
		}
	} else if pr != nil && !fresh {
		pr = nil // not reviewed: proposed again on the new head, and merged
	}
	if pr == nil {
		if pr, head, err = p.publish(ctx, t, ch, m); err != nil {
			return canary.CommitResult{}, err
		}
	}
	if m.Action == string(canary.ActRevert) && p.RevertNeedsApproval {
		ok, err := p.Reviews.Approved(ctx, pr)
		if err != nil {
			return canary.CommitResult{}, err
		}
		if !ok {
			return canary.CommitResult{Pending: fmt.Sprintf("revert PR #%d waits for a reviewer's approval", pr.GetNumber())}, nil
		}
	}
	sha, err := p.merge(ctx, pr, head, ch)
	if errors.Is(err, ErrMergeBlocked) {
		return canary.CommitResult{Pending: err.Error()}, nil
	}
	if err != nil {
		return canary.CommitResult{}, err
	}
	return canary.CommitResult{SHA: sha}, nil
}

// reuse returns the open PR already carrying this very transition (the
// same plan, action, step and artifact; an approval request for it
// included), with its head, the head's parent and its marker. A head
// right on top of the current base head merges exactly what was
// proposed: a merge GitHub refused for now (checks pending, protection)
// is retried without pushing a new commit each tick, and an approved PR
// is merged as approved.
func (p *Publisher) reuse(ctx context.Context, t canary.Tree, m Meta) (pr *gh.PullRequest, head, parent string, old Meta, err error) {
	pr, err = p.openPR(ctx, Branch(m.Plan, m.Artifact))
	if err != nil || pr == nil {
		return nil, "", "", Meta{}, err
	}
	old, ok := ParseMarker(pr.GetBody())
	same := old
	same.Approves = m.Approves
	if !ok || same != m {
		return nil, "", "", Meta{}, nil
	}
	head = pr.GetHead().GetSHA()
	c, _, err := p.GH.Git.GetCommit(ctx, p.Owner, p.Repo, head)
	if err != nil {
		return nil, "", "", Meta{}, fmt.Errorf("read head %s of PR #%d: %w", short(head), pr.GetNumber(), err)
	}
	if len(c.Parents) == 1 {
		parent = c.Parents[0].GetSHA()
	}
	return pr, head, parent, old, nil
}

// touchedSince reports whether a commit after parent, up to head, changed
// any file ch writes (or parent is unknown).
func (p *Publisher) touchedSince(ctx context.Context, head, parent string, ch *canary.Change) (bool, error) {
	if parent == "" {
		return true, nil
	}
	paths := make([]string, 0, len(ch.Files))
	for f := range ch.Files {
		paths = append(paths, f)
	}
	last, err := p.Local.LastCommit(ctx, head, paths...)
	if err != nil || last == "" {
		return false, err
	}
	before, err := p.Local.Contains(ctx, parent, last)
	if err != nil {
		return false, fmt.Errorf("is %s before %s: %w", short(last), short(parent), err)
	}
	return !before, nil
}

// reRequest proposes an approved change again on the moved base: a new
// commit on the PR's branch, which approvals of the old one do not cover,
// and a comment saying why. The rollout waits for a new review.
func (p *Publisher) reRequest(ctx context.Context, t canary.Tree, ch *canary.Change, m, old Meta,
	pr *gh.PullRequest) (canary.CommitResult, error) {
	was := pr.GetHead().GetSHA()
	m.Approves = old.Approves
	pr, head, err := p.publish(ctx, t, ch, m)
	if err != nil {
		return canary.CommitResult{}, err
	}
	body := fmt.Sprintf("The base branch `%s` moved since this change was proposed (it was built on the parent of %s; "+
		"`%s` is now at %s), so canarybot did not merge it. The same transition is proposed again on the new head as %s; "+
		"approvals of the old commit do not apply to it. Please review again.", p.Base, short(was), p.Base, short(t.Head), short(head))
	if _, _, err := p.GH.Issues.CreateComment(ctx, p.Owner, p.Repo, pr.GetNumber(), &gh.IssueComment{Body: gh.String(body)}); err != nil {
		return canary.CommitResult{}, fmt.Errorf("comment on PR #%d: %w", pr.GetNumber(), err)
	}
	p.Log.Info("base moved since approval; proposed again for review", "pr", pr.GetNumber(), "was", short(was), "now", short(head))
	return canary.CommitResult{Pending: fmt.Sprintf("PR #%d was proposed again on the moved base and waits for a new review", pr.GetNumber())}, nil
}

// compute checks out the base and runs fn; a nil change, or one that
// changes nothing, comes back nil.
func (p *Publisher) compute(ctx context.Context, fn canary.TransactFunc, approves int) (canary.Tree, *canary.Change, Meta, error) {
	t, err := p.Local.Checkout(ctx)
	if err != nil {
		return t, nil, Meta{}, fmt.Errorf("checkout %s: %w", p.Base, err)
	}
	ch, err := fn(ctx, t)
	if err != nil || ch == nil {
		return t, nil, Meta{}, err
	}
	m, err := MetaOf(ch)
	if err != nil {
		return t, nil, m, canary.Terminal(err)
	}
	m.Approves = approves
	return t, ch, m, nil
}

// publish writes the change as a commit on the plan's branch (through the
// API), and opens or updates its PR with the evidence and a check run.
func (p *Publisher) publish(ctx context.Context, t canary.Tree, ch *canary.Change, m Meta) (*gh.PullRequest, string, error) {
	branch := Branch(m.Plan, m.Artifact)
	head, err := p.Local.PushBranch(ctx, t.Head, ch, branch)
	if err != nil {
		return nil, "", fmt.Errorf("push the change to %s: %w", branch, err)
	}
	if head == "" {
		return nil, "", fmt.Errorf("push the change to %s: it changes nothing on %s", branch, short(t.Head))
	}
	pr, created, err := p.upsertPR(ctx, branch, ch.Subject, Body(m, ch))
	if err != nil {
		return nil, "", err
	}
	if err := p.checkRun(ctx, head, m, ch); err != nil {
		return nil, "", err
	}
	// Labels mark the PRs people look for: reverts, and steps waiting for
	// them. Steps merged at once go unlabelled: a call saved per step.
	if created && (m.Action == string(canary.ActRevert) || m.Approves >= 0) {
		if err := p.label(ctx, pr, m, ch); err != nil {
			return nil, "", err
		}
	}
	return pr, head, nil
}

// upsertPR reuses the open PR from branch, updating its title and body, or
// opens one. It never opens a second PR for the same branch.
func (p *Publisher) upsertPR(ctx context.Context, branch, title, body string) (*gh.PullRequest, bool, error) {
	pr, err := p.openPR(ctx, branch)
	if err != nil {
		return nil, false, err
	}
	if pr != nil {
		if pr.GetTitle() == title && pr.GetBody() == body {
			return pr, false, nil
		}
		pr, _, err = p.GH.PullRequests.Edit(ctx, p.Owner, p.Repo, pr.GetNumber(), &gh.PullRequest{Title: gh.String(title), Body: gh.String(body)})
		if err != nil {
			return nil, false, fmt.Errorf("update PR for %s: %w", branch, err)
		}
		return pr, false, nil
	}
	pr, _, err = p.GH.PullRequests.Create(ctx, p.Owner, p.Repo, &gh.NewPullRequest{Title: gh.String(title),
		Head: gh.String(branch), Base: gh.String(p.Base), Body: gh.String(body), MaintainerCanModify: gh.Bool(false)})
	if err != nil {
		return nil, false, fmt.Errorf("open PR from %s: %w", branch, err)
	}
	p.Log.Info("opened pull request", "pr", pr.GetNumber(), "branch", branch, "title", title)
	return pr, true, nil
}

// openPR returns the open PR from branch into the base, or nil.
func (p *Publisher) openPR(ctx context.Context, branch string) (*gh.PullRequest, error) {
	prs, _, err := p.GH.PullRequests.List(ctx, p.Owner, p.Repo, &gh.PullRequestListOptions{
		State: "open", Head: p.Owner + ":" + branch, Base: p.Base})
	if err != nil {
		return nil, fmt.Errorf("look up PR for %s: %w", branch, err)
	}
	for _, pr := range prs {
		if pr.GetHead().GetRef() == branch {
			return pr, nil
		}
	}
	return nil, nil
}

func (p *Publisher) label(ctx context.Context, pr *gh.PullRequest, m Meta, ch *canary.Change) error {
	labels := []string{LabelBot}
	if m.Action == string(canary.ActRevert) {
		labels = append(labels, LabelRevert)
	}
	if _, _, err := p.GH.Issues.AddLabelsToIssue(ctx, p.Owner, p.Repo, pr.GetNumber(), labels); err != nil {
		return fmt.Errorf("label PR #%d: %w", pr.GetNumber(), err)
	}
	if m.Action != string(canary.ActRevert) {
		return nil
	}
	reason := ch.Body
	if ch.Evidence != nil {
		reason = ch.Evidence.Decision.Reason
	}
	body := fmt.Sprintf("canarybot is reverting `%s`: %s", m.Artifact, reason)
	if _, _, err := p.GH.Issues.CreateComment(ctx, p.Owner, p.Repo, pr.GetNumber(), &gh.IssueComment{Body: gh.String(body)}); err != nil {
		return fmt.Errorf("comment on revert PR #%d: %w", pr.GetNumber(), err)
	}
	return nil
}

// merge merges the PR at exactly head and deletes the branch.
func (p *Publisher) merge(ctx context.Context, pr *gh.PullRequest, head string, ch *canary.Change) (string, error) {
	msg, err := gitops.FormatMessage(ch)
	if err != nil {
		return "", err
	}
	_, rest, _ := strings.Cut(msg, "\n")
	method := p.MergeMethod
	if method == "" {
		method = MergeSquash
	}
	res, _, err := p.GH.PullRequests.Merge(ctx, p.Owner, p.Repo, pr.GetNumber(), strings.TrimSpace(rest),
		&gh.PullRequestOptions{CommitTitle: ch.Subject, SHA: head, MergeMethod: method})
	switch statusOf(err) {
	case 0:
	case http.StatusConflict:
		return "", fmt.Errorf("merge PR #%d: %w", pr.GetNumber(), errHeadMoved)
	case http.StatusMethodNotAllowed, http.StatusUnprocessableEntity:
		return "", fmt.Errorf("merge PR #%d: %w: %w", pr.GetNumber(), ErrMergeBlocked, err)
	default:
		return "", fmt.Errorf("merge PR #%d: %w", pr.GetNumber(), err)
	}
	p.Log.Info("merged pull request", "pr", pr.GetNumber(), "method", method, "commit", short(res.GetSHA()))
	branch := pr.GetHead().GetRef()
	if err := p.Local.DeleteBranch(ctx, branch); err != nil {
		p.Log.Warn("could not delete merged branch; the next PR reuses it", "branch", branch, "err", err)
	}
	return res.GetSHA(), nil
}

// statusOf is the HTTP status of a go-github error, or 0 for nil.
func statusOf(err error) int {
	var er *gh.ErrorResponse
	switch {
	case err == nil:
		return 0
	case errors.As(err, &er) && er.Response != nil:
		return er.Response.StatusCode
	}
	return -1
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
