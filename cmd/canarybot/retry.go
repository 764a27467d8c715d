package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/canarybot/canarybot/pkg/artifact"
	"github.com/canarybot/canarybot/pkg/canary"
)

type retryOptions struct {
	gitFlags
	artifact, reason string
}

func newRetry(g *globals) *cobra.Command {
	o := &retryOptions{}
	c := &cobra.Command{
		Use:   "retry --repo URL --dir DIR --plan PATH --artifact URI",
		Short: "Take a reverted artifact off a plan's failed list, in one commit, so that it may be proposed again",
		Long: "canarybot never proposes a reverted artifact again on its own. retry commits, as a person's\n" +
			"decision, the removal of URI from the failed list in .canarybot/state/<plan>.yaml, with trailers\n" +
			"Canarybot-Plan and Canarybot-Action: retry. The next reconcile proposes it again if the\n" +
			"registry still offers it.",
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
	// Placeholders that say what to give, as Use does, rather than the
	// flags' Go types (pflag takes the backquoted word; --repo is a
	// stringArray, given once here).
	for name, usage := range map[string]string{
		"repo":          "the GitOps repo's `URL`: file://, a local path, or http(s):// (required)",
		"dir":           "the working clone `DIR`, kept between runs (required)",
		"plan":          "repo `PATH` of the CanaryPlan (required)",
		"branch":        "the `BRANCH` canarybot commits to",
		"git-token-env": "the `NAME` of the environment variable holding an http(s) git token",
	} {
		if fl := f.Lookup(name); fl != nil {
			fl.Usage = usage
		}
	}
	f.StringVar(&o.artifact, "artifact", "", "the reverted artifact's pinned `URI`, as 'canarybot status' lists it (required)")
	f.StringVar(&o.reason, "reason", "", "`TEXT` saying why it deserves another try; recorded in the commit and the history")
	for _, req := range append(requiredGitFlags(), "plan", "artifact") {
		_ = c.MarkFlagRequired(req)
	}
	return c
}

func (o *retryOptions) run(ctx context.Context, log *slog.Logger, out io.Writer) error {
	if err := o.checkPlan(); err != nil {
		return err
	}
	ref, err := artifact.Parse(o.artifact)
	if err != nil {
		return fmt.Errorf("--artifact: %w", err)
	}
	uri := ref.String()
	repo, err := o.open(ctx, log, "", "")
	if err != nil {
		return err
	}
	if _, err := repo.Fetch(ctx); err != nil {
		return err
	}
	var plan string
	res, err := repo.Transact(ctx, func(_ context.Context, t canary.Tree) (*canary.Change, error) {
		st, err := o.readState(t)
		if err != nil {
			return nil, err
		}
		plan = st.Metadata.Name
		after, removed, err := canary.Retry(st, uri, o.reason, canary.SystemClock{}.Now())
		if err != nil {
			return nil, err
		}
		ch, err := canary.RetryChange(after, removed)
		return &ch, err
	})
	if err != nil {
		return fmt.Errorf("retry %s: %w", uri, err)
	}
	fmt.Fprintf(out, "%s: %s is off the failed list (commit %s); the next reconcile may propose it again\n",
		plan, uri, shortSHA(res.SHA))
	return nil
}

// readState reads the plan at o.plan and its state file in t.
func (o *retryOptions) readState(t canary.Tree) (*canary.RolloutState, error) {
	b, err := canary.ReadRepoFile(t.FS, o.plan, canary.MaxPlanBytes)
	if err != nil {
		return nil, fmt.Errorf("read plan %s: %w", o.plan, err)
	}
	p, err := canary.DecodePlan(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.plan, err)
	}
	sp := canary.StatePath(p.Metadata.Name)
	b, err = canary.ReadRepoFile(t.FS, sp, canary.MaxPlanBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("plan %s has never rolled out (no %s): nothing was reverted", p.Metadata.Name, sp)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sp, err)
	}
	st, err := canary.ParseState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sp, err)
	}
	return st, nil
}

func shortSHA(sha string) string {
	if len(sha) > 10 {
		return sha[:10]
	}
	return sha
}
