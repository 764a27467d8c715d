package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/canarybot/canarybot/pkg/canary"
)

// controlOptions are the flags of promote, pause, resume and abort.
type controlOptions struct {
	gitFlags
	verb, reason, by string
}

// controlVerbs says what each control command does, for its help.
var controlVerbs = []struct{ verb, short string }{
	{canary.RequestPromote, "Let a rollout past the pause or approval step it is at"},
	{canary.RequestPause, "Hold a progressing rollout where it is"},
	{canary.RequestResume, "Resume a held rollout"},
	{canary.RequestAbort, "Abort a rollout: canarybot reverts to the stable artifact"},
}

func newControls(g *globals) []*cobra.Command {
	var cmds []*cobra.Command
	for _, v := range controlVerbs {
		o := &controlOptions{verb: v.verb}
		c := &cobra.Command{
			Use:   v.verb + " --repo URL --dir DIR --plan NAME [--reason TEXT]",
			Short: v.short + ", recorded in Git",
			Long: v.short + ".\n\nThe request is a commit of .canarybot/requests/<plan>.yaml with trailers " +
				"Canarybot-Plan,\nCanarybot-Request and Canarybot-Requested-By. The running bot carries it out on its next\n" +
				"look at the plan, as it does a ChatOps command, and records it in the state file, once. A request\n" +
				"for a rollout that has moved on meanwhile does nothing. For teams not using the GitHub App.",
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				log, err := g.logger()
				if err != nil {
					return err
				}
				return o.run(cmd.Context(), log, g.stdout)
			},
		}
		f := c.Flags()
		o.addFlags(f)
		f.Lookup("plan").Usage = "the plan's `NAME` (metadata.name), or the repo path of its file (required)"
		f.StringVar(&o.reason, "reason", "", "`TEXT` saying why; recorded in the commit, the state and the bot's decision")
		f.StringVar(&o.by, "by", "", "who asks, recorded in the commit (default: $CANARYBOT_USER, else the login name)")
		for _, req := range append(requiredGitFlags(), "plan") {
			_ = c.MarkFlagRequired(req)
		}
		cmds = append(cmds, c)
	}
	return cmds
}

func (o *controlOptions) run(ctx context.Context, log *slog.Logger, out io.Writer) error {
	by, err := requester(o.by)
	if err != nil {
		return err
	}
	if strings.TrimSpace(o.plan) == "" {
		return errors.New("--plan: give the plan's name or the path of its file")
	}
	repo, err := o.open(ctx, log, by, "")
	if err != nil {
		return err
	}
	// Decide on the remote's head, not on what the clone saw last time.
	if _, err := repo.Fetch(ctx); err != nil {
		return err
	}
	var req *canary.RolloutRequest
	res, err := repo.Transact(ctx, func(_ context.Context, t canary.Tree) (*canary.Change, error) {
		plan, err := findPlan(t, o.plan)
		if err != nil {
			return nil, err
		}
		st, err := readRollout(t, plan.Metadata.Name)
		if err != nil {
			return nil, err
		}
		if req, err = canary.NewRequest(plan, st, o.verb, by, o.reason, canary.SystemClock{}.Now()); err != nil {
			return nil, err
		}
		ch, err := canary.RequestChange(req)
		return &ch, err
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", o.verb, o.plan, err)
	}
	fmt.Fprintf(out, "%s: %s requested by %s (commit %s, request %s); the bot carries it out on its next look\n",
		req.Metadata.Name, o.verb, by, shortSHA(res.SHA), req.Spec.ID)
	return nil
}

// requester is who asks: --by, else $CANARYBOT_USER, else the login name.
func requester(by string) (string, error) {
	for _, s := range []string{by, os.Getenv("CANARYBOT_USER")} {
		if s = strings.TrimSpace(s); s != "" {
			return s, nil
		}
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username, nil
	}
	return "", errors.New("--by: say who asks (or set CANARYBOT_USER)")
}

// findPlan finds a plan in t by name, or by the path of its file.
func findPlan(t canary.Tree, nameOrPath string) (*canary.CanaryPlan, error) {
	if strings.Contains(nameOrPath, "/") || strings.HasSuffix(nameOrPath, ".yaml") || strings.HasSuffix(nameOrPath, ".yml") {
		if err := canary.CheckRepoPath(nameOrPath); err != nil {
			return nil, canary.Terminal(fmt.Errorf("--plan: %w", err))
		}
		return canary.ReadPlan(t, nameOrPath)
	}
	c, err := canary.Discover(t)
	if err != nil {
		return nil, fmt.Errorf("discover plans at %s: %w", shortSHA(t.Head), err)
	}
	if p, ok := c.Lookup(nameOrPath); ok {
		return p, nil
	}
	if p, ok := c.Problem(nameOrPath); ok {
		return nil, canary.Terminal(fmt.Errorf("plan %s at %s is invalid: %w", nameOrPath, p.Where(), p.Err))
	}
	names := make([]string, 0, len(c.Plans))
	for _, e := range c.Plans {
		names = append(names, e.Plan.Metadata.Name)
	}
	return nil, canary.Terminal(fmt.Errorf("no plan named %q at %s; plans: %s", nameOrPath, shortSHA(t.Head), orNone(names)))
}

// readRollout reads plan's state file in t.
func readRollout(t canary.Tree, plan string) (*canary.RolloutState, error) {
	st, err := canary.ReadState(t, plan)
	if err == nil && st == nil {
		return nil, canary.Terminal(fmt.Errorf("plan %s has never rolled out: no %s", plan, canary.StatePath(plan)))
	}
	return st, err
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}
