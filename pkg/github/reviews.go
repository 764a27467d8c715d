package github

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Request opens (or keeps) the PR that carries the transition approval
// would let through, with the evidence so far. Calling it again while the
// PR is open changes nothing: the proposal is not re-pushed every tick.
func (p *Publisher) Request(ctx context.Context, req canary.ApprovalRequest) error {
	branch := Branch(req.Plan, req.Candidate.URI)
	pr, err := p.openPR(ctx, branch)
	if err != nil {
		return err
	}
	if m, ok := ParseMarker(pr.GetBody()); pr != nil && ok && m.Approves == req.Step && m.Artifact == req.Candidate.URI {
		return nil
	}
	if req.Propose == nil {
		return canary.Terminalf("approval request for %s step %d carries no proposed change", req.Plan, req.Step)
	}
	t, ch, m, err := p.compute(ctx, req.Propose, req.Step)
	if err != nil || ch == nil {
		return err
	}
	pr, _, err = p.publish(ctx, t, ch, m)
	if err != nil {
		return err
	}
	p.Log.Info("step waits for approval on its pull request", "plan", req.Plan, "step", req.Step, "pr", pr.GetNumber())
	return nil
}

// Approved reports whether the open approval PR for this step has a
// reviewer's approval (or a /canarybot promote from someone with write
// access).
func (p *Publisher) Approved(ctx context.Context, plan string, step int, c canary.Artifact) (bool, error) {
	pr, err := p.openPR(ctx, Branch(plan, c.URI))
	if err != nil || pr == nil {
		return false, err
	}
	if m, ok := ParseMarker(pr.GetBody()); !ok || m.Approves != step || m.Artifact != c.URI {
		return false, nil
	}
	return p.Reviews.Approved(ctx, pr)
}

// checkRun records the evidence as the canarybot/gates check on head.
func (p *Publisher) checkRun(ctx context.Context, head string, m Meta, ch *canary.Change) error {
	conclusion, title := "success", ch.Subject
	var gates []canary.GateResult
	if ch.Evidence != nil {
		gates = ch.Evidence.Gates()
	}
	for _, g := range gates {
		if g.Verdict != canary.VerdictSuccessful {
			conclusion = "neutral" // a revert or hold must still be mergeable
		}
	}
	if m.Approves >= 0 {
		title = fmt.Sprintf("step %d waits for approval: %s", m.Approves, ch.Subject)
	}
	summary := ch.Body
	if ch.Evidence != nil {
		summary = fmt.Sprintf("**%s** — %s", ch.Evidence.Decision.Action, ch.Evidence.Decision.Reason)
	}
	text := GateTable(gates)
	if ch.Evidence != nil {
		text = StepTable(ch.Evidence) + "\n" + text
	}
	_, _, err := p.GH.Checks.CreateCheckRun(ctx, p.Owner, p.Repo, gh.CreateCheckRunOptions{
		Name: CheckName, HeadSHA: head, Status: gh.String("completed"), Conclusion: gh.String(conclusion),
		ExternalID: gh.String(m.Plan), CompletedAt: &gh.Timestamp{Time: time.Now()},
		Output: &gh.CheckRunOutput{Title: gh.String(title), Summary: gh.String(summary), Text: gh.String(text)},
	})
	if err != nil {
		return fmt.Errorf("create check run on %s: %w", short(head), err)
	}
	return nil
}

// Reviews decides whether a PR is approved: the latest review of at
// least one person with write access approves its current head commit, no
// one's latest review requests changes, and canarybot's own reviews do not
// count. An approval of an earlier head does not carry over.
type Reviews struct {
	GH          *gh.Client
	Owner, Repo string
	// Bot is canarybot's own login (e.g. canarybot[bot]).
	Bot   string
	Perms *Permissions
	// Promoted, when set, reports a pending /canarybot promote from
	// someone with write access on this PR.
	Promoted func(pr int) bool
}

// Approved implements the rule above.
func (r *Reviews) Approved(ctx context.Context, pr *gh.PullRequest) (bool, error) {
	if r.Promoted != nil && r.Promoted(pr.GetNumber()) {
		return true, nil
	}
	reviews, _, err := r.GH.PullRequests.ListReviews(ctx, r.Owner, r.Repo, pr.GetNumber(), &gh.ListOptions{PerPage: 100})
	if err != nil {
		return false, fmt.Errorf("list reviews of PR #%d: %w", pr.GetNumber(), err)
	}
	head := pr.GetHead().GetSHA()
	latest := map[string]string{}
	for _, rv := range reviews {
		state, who := strings.ToUpper(rv.GetState()), rv.GetUser().GetLogin()
		if who == "" || strings.EqualFold(who, r.Bot) || state == "COMMENTED" || state == "PENDING" {
			continue
		}
		if state == "APPROVED" && rv.GetCommitID() != head {
			state = "STALE" // an approval applies to the commit it was given on, not to later ones
		}
		latest[who] = state
	}
	approved := false
	for who, state := range latest {
		switch state {
		case "CHANGES_REQUESTED":
			return false, nil
		case "APPROVED":
			ok, err := r.Perms.CanWrite(ctx, who)
			if err != nil {
				return false, err
			}
			approved = approved || ok
		}
	}
	return approved, nil
}

// Permissions looks up and briefly caches users' permission on the repo.
type Permissions struct {
	GH          *gh.Client
	Owner, Repo string
	TTL         time.Duration
	Now         func() time.Time
	mu          sync.Mutex
	cache       map[string]permEntry
}

type permEntry struct {
	perm string
	at   time.Time
}

// Level returns admin, write, read or none.
func (p *Permissions) Level(ctx context.Context, user string) (string, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	p.mu.Lock()
	e, ok := p.cache[user]
	p.mu.Unlock()
	if ok && now().Sub(e.at) < p.TTL {
		return e.perm, nil
	}
	lvl, _, err := p.GH.Repositories.GetPermissionLevel(ctx, p.Owner, p.Repo, user)
	if statusOf(err) == 404 {
		lvl, err = &gh.RepositoryPermissionLevel{Permission: gh.String("none")}, nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s's permission on %s/%s: %w", user, p.Owner, p.Repo, err)
	}
	p.mu.Lock()
	if p.cache == nil {
		p.cache = map[string]permEntry{}
	}
	p.cache[user] = permEntry{perm: lvl.GetPermission(), at: now()}
	p.mu.Unlock()
	return lvl.GetPermission(), nil
}

// CanWrite reports whether user has write (or admin) access.
func (p *Permissions) CanWrite(ctx context.Context, user string) (bool, error) {
	lvl, err := p.Level(ctx, user)
	return lvl == "admin" || lvl == "write" || lvl == "maintain", err
}
