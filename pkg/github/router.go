package github

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/canarybot/canarybot/pkg/github/webhook"
)

// PlanRef is what the router needs to know of a plan.
type PlanRef struct {
	Name string
	// OCIRepository is the plan's OCI source (host/path), lower-case, or ""
	// when the plan watches another registry.
	OCIRepository string
}

// Router turns webhook events into engine wake-ups and ChatOps commands.
// Events carry no authority of their own: a wake makes the engine look at
// the registry, GitHub and Git again, so a replayed or forged-but-signed
// event can at worst cause an extra look.
type Router struct {
	GH          *gh.Client
	Owner, Repo string
	// Plans lists the plans of this repository driven now.
	Plans   func() []PlanRef
	Wake    func(plan string)
	ChatOps *ChatOps
	Log     *slog.Logger
}

// Handle routes one event. Errors are logged here, not returned: the queue
// has no one to return them to, and the sweep redoes what was missed.
func (r *Router) Handle(ctx context.Context, ev webhook.Event) {
	if err := r.handle(ctx, ev); err != nil {
		r.Log.Warn("webhook event not handled; the sweep will retry", "event", ev.Kind, "delivery", ev.Delivery, "err", err)
	}
}

func (r *Router) handle(ctx context.Context, ev webhook.Event) error {
	if ev.Kind != webhook.KindPackage && (!strings.EqualFold(ev.Owner, r.Owner) || !strings.EqualFold(ev.Repo, r.Repo)) {
		r.Log.Info("event for another repository ignored", "repo", ev.Owner+"/"+ev.Repo, "delivery", ev.Delivery)
		return nil
	}
	switch ev.Kind {
	case webhook.KindPackage:
		woke := false
		for _, p := range r.Plans() {
			if p.OCIRepository != "" && p.OCIRepository == ev.Package.Repository {
				r.Log.Info("new package version; checking the registry", "plan", p.Name, "repository", p.OCIRepository,
					"tag", ev.Package.Tag, "digest", ev.Package.Digest)
				r.Wake(p.Name)
				woke = true
			}
		}
		if !woke {
			r.Log.Info("no plan watches this package", "repository", ev.Package.Repository)
		}
	case webhook.KindReview:
		r.wakeBranch(ev.PullRequest.Branch)
	case webhook.KindPullRequest:
		if !ev.PullRequest.Merged {
			if err := r.closed(ctx, ev.PullRequest.Number, ev.Sender); err != nil {
				return err
			}
		}
		r.wakeBranch(ev.PullRequest.Branch)
	case webhook.KindCheckRun:
		if ev.CheckRun.Name == CheckName {
			r.wakeBranch(ev.CheckRun.HeadBranch)
		}
	case webhook.KindComment:
		return r.comment(ctx, ev.Comment)
	}
	return nil
}

// closed treats an approval PR closed without merging as the reviewer's
// rejection: the rollout is aborted (reverted), and the PR says so.
func (r *Router) closed(ctx context.Context, number int, by string) error {
	pr, _, err := r.GH.PullRequests.Get(ctx, r.Owner, r.Repo, number)
	if err != nil {
		return fmt.Errorf("read closed PR #%d: %w", number, err)
	}
	m, ok := ParseMarker(pr.GetBody())
	if !ok || m.Approves < 0 || pr.GetMerged() || strings.EqualFold(by, r.ChatOps.Bot) || !r.known(m.Plan) {
		return nil
	}
	return r.ChatOps.Reject(ctx, m.Plan, number, by)
}

func (r *Router) wakeBranch(branch string) {
	if plan, ok := PlanOfBranch(branch); ok && r.known(plan) {
		r.Wake(plan)
	}
}

func (r *Router) known(plan string) bool {
	for _, p := range r.Plans() {
		if p.Name == plan {
			return true
		}
	}
	return false
}

func (r *Router) comment(ctx context.Context, c *webhook.Comment) error {
	if !strings.Contains(c.Body, "/canarybot") {
		return nil
	}
	ref := CommentRef{ID: c.ID, Issue: c.Issue, Author: c.Author, Body: c.Body}
	if c.IsPR {
		pr, _, err := r.GH.PullRequests.Get(ctx, r.Owner, r.Repo, c.Issue)
		if err != nil {
			return fmt.Errorf("read PR #%d: %w", c.Issue, err)
		}
		ref.Branch = pr.GetHead().GetRef()
	}
	return r.ChatOps.Handle(ctx, ref)
}

// Sweep recovers what lost deliveries would have done (GitHub does not
// redeliver on its own): it wakes every plan with an open canarybot PR and
// handles any unanswered command in those PRs' comments.
func (r *Router) Sweep(ctx context.Context) error {
	prs, _, err := r.GH.PullRequests.List(ctx, r.Owner, r.Repo, &gh.PullRequestListOptions{State: "open",
		ListOptions: gh.ListOptions{PerPage: 100}})
	if err != nil {
		return fmt.Errorf("sweep: list open PRs: %w", err)
	}
	for _, pr := range prs {
		branch := pr.GetHead().GetRef()
		if _, ok := PlanOfBranch(branch); !ok {
			continue
		}
		r.wakeBranch(branch)
		cs, _, err := r.GH.Issues.ListComments(ctx, r.Owner, r.Repo, pr.GetNumber(), &gh.IssueListCommentsOptions{
			ListOptions: gh.ListOptions{PerPage: 100}})
		if err != nil {
			return fmt.Errorf("sweep: list comments of #%d: %w", pr.GetNumber(), err)
		}
		for _, c := range cs {
			if !strings.Contains(c.GetBody(), "/canarybot") || strings.EqualFold(c.GetUser().GetLogin(), r.ChatOps.Bot) {
				continue
			}
			ref := CommentRef{ID: c.GetID(), Issue: pr.GetNumber(), Author: c.GetUser().GetLogin(), Body: c.GetBody(), Branch: branch}
			if err := r.ChatOps.Handle(ctx, ref); err != nil {
				return fmt.Errorf("sweep: comment %d: %w", c.GetID(), err)
			}
		}
	}
	return nil
}
