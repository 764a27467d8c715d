package github

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"

	gh "github.com/google/go-github/v60/github"

	"github.com/canarybot/canarybot/pkg/canary"
)

// ChatOps verbs.
const (
	VerbPromote = "promote"
	VerbAbort   = "abort"
	VerbPause   = "pause"
	VerbResume  = "resume"
	VerbStatus  = "status"
)

// Command is one "/canarybot <verb> [plan] [reason]" line of a comment.
type Command struct {
	Verb   string
	Plan   string
	Reason string
}

var commandRe = regexp.MustCompile(`(?m)^\s*/canarybot\s+(\S+)(?:[ \t]+(.*?))?\s*$`)

// ParseCommands reads the commands of a comment, one per line. An unknown
// verb is returned as is, so that the reply can say so.
func ParseCommands(body string, plans []string) []Command {
	var out []Command
	for _, m := range commandRe.FindAllStringSubmatch(body, 10) {
		c := Command{Verb: strings.ToLower(m[1])}
		rest := strings.Fields(m[2])
		if len(rest) > 0 && contains(plans, rest[0]) {
			c.Plan, rest = rest[0], rest[1:]
		}
		c.Reason = strings.Join(rest, " ")
		out = append(out, c)
	}
	return out
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// CommentRef is where a command was written.
type CommentRef struct {
	ID     int64
	Issue  int
	Author string
	Body   string
	// Branch is the head branch when the issue is a PR.
	Branch string
}

// ChatOps executes /canarybot commands from people with write access. A
// command is answered by a reply that quotes its comment ID; a command
// without a reply is not done yet, so after a crash the sweep finds and
// redoes it. Commands that need a transition stay pending (Pending) until
// the engine commits it, and are answered then (Observe).
type ChatOps struct {
	GH          *gh.Client
	Owner, Repo string
	Bot         string
	Perms       *Permissions
	// Plans lists the names of the plans this bot drives now (plans come
	// and go with the repository's commits).
	Plans func() []string
	// Status renders a plan's rollout for /canarybot status.
	Status func(ctx context.Context, plan string) (string, error)
	// Wake pokes the plan's engine.
	Wake func(plan string)
	Log  *slog.Logger

	mu      sync.Mutex
	pending map[string][]pendingCommand
}

type pendingCommand struct {
	Command
	ref CommentRef
	// answer, once set, is the reply still to be posted.
	answer string
}

var _ canary.Signals = (*ChatOps)(nil)

var replyRe = regexp.MustCompile(`<!-- canarybot:reply-to=(\d+) -->`)

// Handle executes the commands in one comment, unless already answered.
func (c *ChatOps) Handle(ctx context.Context, ref CommentRef) error {
	if strings.EqualFold(ref.Author, c.Bot) {
		return nil
	}
	cmds := ParseCommands(ref.Body, c.Plans())
	if len(cmds) == 0 {
		return nil
	}
	if done, err := c.answered(ctx, ref); err != nil || done || c.isPending(ref.ID) {
		return err
	}
	ok, err := c.Perms.CanWrite(ctx, ref.Author)
	if err != nil {
		return err
	}
	if !ok {
		lvl, _ := c.Perms.Level(ctx, ref.Author)
		return c.reply(ctx, ref, fmt.Sprintf("@%s: canarybot commands need write access to %s/%s (you have %s). Nothing was done.",
			ref.Author, c.Owner, c.Repo, or(lvl, "none")))
	}
	for _, cmd := range cmds {
		if err := c.accept(ctx, ref, cmd); err != nil {
			return err
		}
	}
	return nil
}

func (c *ChatOps) accept(ctx context.Context, ref CommentRef, cmd Command) error {
	plans := c.Plans()
	if cmd.Plan == "" {
		if plan, ok := PlanOfBranch(ref.Branch); ok && contains(plans, plan) {
			cmd.Plan = plan
		} else if len(plans) == 1 {
			cmd.Plan = plans[0]
		}
	}
	switch {
	case cmd.Plan == "":
		return c.reply(ctx, ref, fmt.Sprintf("@%s: which plan? Write `/canarybot %s <plan>`; plans: %s.",
			ref.Author, cmd.Verb, strings.Join(plans, ", ")))
	case cmd.Verb == VerbStatus:
		s, err := c.Status(ctx, cmd.Plan)
		if err != nil {
			return fmt.Errorf("status of %s: %w", cmd.Plan, err)
		}
		return c.reply(ctx, ref, fmt.Sprintf("@%s: %s", ref.Author, s))
	case cmd.Verb == VerbPromote || cmd.Verb == VerbAbort || cmd.Verb == VerbPause || cmd.Verb == VerbResume:
		c.mu.Lock()
		if c.pending == nil {
			c.pending = map[string][]pendingCommand{}
		}
		c.pending[cmd.Plan] = append(c.pending[cmd.Plan], pendingCommand{Command: cmd, ref: ref})
		c.mu.Unlock()
		c.Log.Info("chatops command accepted", "plan", cmd.Plan, "verb", cmd.Verb, "by", ref.Author, "comment", ref.ID)
		if c.Wake != nil {
			c.Wake(cmd.Plan)
		}
		return nil
	}
	return c.reply(ctx, ref, fmt.Sprintf("@%s: unknown command `%s`; try promote, pause, resume, abort or status.", ref.Author, cmd.Verb))
}

// Reject records that a reviewer closed plan's approval PR without merging
// it: an abort, answered on the PR once the revert is committed.
func (c *ChatOps) Reject(ctx context.Context, plan string, pr int, by string) error {
	ref := CommentRef{ID: -int64(pr), Issue: pr, Author: by}
	if done, err := c.answered(ctx, ref); err != nil || done || c.isPending(ref.ID) {
		return err
	}
	c.mu.Lock()
	if c.pending == nil {
		c.pending = map[string][]pendingCommand{}
	}
	c.pending[plan] = append(c.pending[plan], pendingCommand{ref: ref,
		Command: Command{Verb: VerbAbort, Plan: plan, Reason: fmt.Sprintf("approval PR #%d closed without merging", pr)}})
	c.mu.Unlock()
	c.Log.Info("approval PR closed without merging; aborting", "plan", plan, "pr", pr, "by", by)
	if c.Wake != nil {
		c.Wake(plan)
	}
	return nil
}

// Pending returns the plan's pending abort, pause and resume commands.
func (c *ChatOps) Pending(_ context.Context, plan string) (canary.Commands, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out canary.Commands
	for _, p := range c.pending[plan] {
		if p.answer != "" {
			continue
		}
		why := "by @" + p.ref.Author
		if p.Reason != "" {
			why = p.Reason + " (" + why + ")"
		}
		switch p.Verb {
		case VerbAbort:
			out.Abort = why
		case VerbPause:
			out.Pause = why
		case VerbResume:
			out.Resume = true
		}
	}
	return out, nil
}

// Promoted reports a pending /canarybot promote written on PR number pr.
func (c *ChatOps) Promoted(pr int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmds := range c.pending {
		for _, p := range cmds {
			if p.Verb == VerbPromote && p.ref.Issue == pr {
				return true
			}
		}
	}
	return false
}

// Observe answers the pending commands a tick has settled: those whose
// transition it committed, and those with nothing to act on. An answer
// that cannot be posted is kept and posted on a later tick.
func (c *ChatOps) Observe(ctx context.Context, r canary.Report) error {
	c.mu.Lock()
	var keep, done []pendingCommand
	for _, p := range c.pending[r.Plan] {
		if p.answer == "" {
			p.answer, _ = settle(p.Verb, r)
		}
		if p.answer != "" {
			done = append(done, p)
		} else {
			keep = append(keep, p)
		}
	}
	if len(keep) > 0 || len(done) > 0 {
		c.pending[r.Plan] = keep
	}
	c.mu.Unlock()
	for i, p := range done {
		if err := c.reply(ctx, p.ref, fmt.Sprintf("@%s: `/canarybot %s`: %s", p.ref.Author, p.Verb, p.answer)); err != nil {
			c.mu.Lock()
			c.pending[r.Plan] = append(c.pending[r.Plan], done[i:]...)
			c.mu.Unlock()
			return err
		}
	}
	return nil
}

// settle says whether report r settles a command, and how.
func settle(verb string, r canary.Report) (string, bool) {
	d, phase := r.Decision, ""
	if r.State != nil {
		phase = r.State.Status.Phase
	}
	committed := d.Action.Commits() && r.Commit.SHA != "" && !r.Commit.NoOp
	switch {
	case committed && verb == VerbAbort && d.Action == canary.ActRevert,
		committed && verb == VerbPause && d.Action == canary.ActHold,
		committed && (verb == VerbResume || verb == VerbPromote) && (d.Action == canary.ActAdvance || d.Action == canary.ActPromote):
		return fmt.Sprintf("done, %s committed as %s (%s).", d.Action, short(r.Commit.SHA), d.Reason), true
	case phase != canary.PhaseProgressing && phase != canary.PhasePaused && !committed:
		return "no rollout in progress; nothing to do.", true
	case verb == VerbResume && phase == canary.PhaseProgressing && !committed:
		return "the rollout is not held; nothing to do.", true
	case verb == VerbPromote && d.Action != canary.ActRequestApproval && !committed:
		return "no step is waiting for approval; nothing to do.", true
	}
	return "", false
}

func (c *ChatOps) isPending(id int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmds := range c.pending {
		for _, p := range cmds {
			if p.ref.ID == id {
				return true
			}
		}
	}
	return false
}

// answered reports whether canarybot already replied to the comment.
func (c *ChatOps) answered(ctx context.Context, ref CommentRef) (bool, error) {
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		cs, resp, err := c.GH.Issues.ListComments(ctx, c.Owner, c.Repo, ref.Issue, opts)
		if err != nil {
			return false, fmt.Errorf("list comments of #%d: %w", ref.Issue, err)
		}
		for _, cm := range cs {
			if m := replyRe.FindStringSubmatch(cm.GetBody()); m != nil && m[1] == strconv.FormatInt(ref.ID, 10) {
				return true, nil
			}
		}
		if resp == nil || resp.NextPage == 0 {
			return false, nil
		}
		opts.Page = resp.NextPage
	}
}

func (c *ChatOps) reply(ctx context.Context, ref CommentRef, text string) error {
	body := fmt.Sprintf("<!-- canarybot:reply-to=%d -->\n%s", ref.ID, text)
	if _, _, err := c.GH.Issues.CreateComment(ctx, c.Owner, c.Repo, ref.Issue, &gh.IssueComment{Body: gh.String(body)}); err != nil {
		return fmt.Errorf("reply on #%d: %w", ref.Issue, err)
	}
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
