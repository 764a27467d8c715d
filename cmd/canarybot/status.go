package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

type statusOptions struct {
	repo, branch, gitTokenEnv, plan string
	serve                           string
	fetchEvery                      time.Duration
}

func newStatus(g *globals) *cobra.Command {
	o := &statusOptions{}
	c := &cobra.Command{
		Use:   "status --repo URL [--serve ADDR]",
		Short: "Rebuild every rollout's phase, step, weight, artifact and history from Git alone; --serve shows them as a web page",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.serve == "" {
				return o.run(cmd.Context(), g.stdout)
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			r, err := o.open(cmd.Context())
			if err != nil {
				return err
			}
			return o.serveStatus(cmd.Context(), r, canary.SystemClock{}, log, g.stdout)
		},
	}
	c.Flags().StringVar(&o.repo, "repo", "", "GitOps repo: file://, a local path, or http(s):// (required)")
	c.Flags().StringVar(&o.branch, "branch", "main", "branch canarybot writes to")
	c.Flags().StringVar(&o.gitTokenEnv, "git-token-env", "", "environment variable holding an http(s) git token")
	// --token-env was status's own name for --git-token-env; old scripts
	// keep working, with pflag's notice on stderr (cobra would print it
	// to stdout, before the status).
	c.Flags().StringVar(&o.gitTokenEnv, "token-env", "", "environment variable holding an http(s) git token")
	_ = c.Flags().MarkDeprecated("token-env", "use --git-token-env")
	c.Flags().SetOutput(g.stderr)
	c.Flags().StringVar(&o.plan, "plan", "", "show only this plan")
	c.Flags().StringVar(&o.serve, "serve", "", "serve the status page (GET /, /rollouts/{plan}, /api/v1/rollouts) on this address, e.g. :8080, "+
		"instead of printing")
	c.Flags().DurationVar(&o.fetchEvery, "fetch-interval", statusFetchEvery, "with --serve, how often to fetch the branch")
	_ = c.MarkFlagRequired("repo")
	return c
}

// open clones the branch into memory, read-only.
func (o *statusOptions) open(ctx context.Context) (*gitops.Reader, error) {
	opts := gitops.Options{URL: o.repo, Branch: o.branch}
	if o.gitTokenEnv != "" {
		if opts.Token = os.Getenv(o.gitTokenEnv); opts.Token == "" {
			return nil, fmt.Errorf("--git-token-env %s: the variable is empty", o.gitTokenEnv)
		}
	}
	return gitops.OpenReadOnly(ctx, opts)
}

func (o *statusOptions) run(ctx context.Context, out io.Writer) error {
	r, err := o.open(ctx)
	if err != nil {
		return err
	}
	plans, err := r.StatePlans(ctx, "")
	if err != nil {
		return fmt.Errorf("list rollouts: %w", err)
	}
	cat, err := catalogAt(ctx, r)
	if err != nil {
		return err
	}
	if len(cat.Plans)+len(cat.Invalid) == 0 && cat.ConfigErr == nil {
		cat = nil // the repo keeps no plans where the bot discovers them (plans driven with --plan)
	}
	if o.plan != "" {
		plans = []string{o.plan}
	} else if cat != nil {
		printCatalog(out, cat, plans)
		if err := printPipelines(ctx, out, r, cat); err != nil {
			return err
		}
	}
	if len(plans) == 0 {
		fmt.Fprintf(out, "no rollouts in %s (no %s/*.yaml on %s)\n", gitops.RedactURL(o.repo), canary.StateDir, o.branch)
		return nil
	}
	commits, err := r.Log(ctx, "", 0)
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	for i, p := range plans {
		if i > 0 {
			fmt.Fprintln(out)
		}
		if err := printRollout(ctx, out, r, p, commits); err != nil {
			return err
		}
		if cat != nil {
			printPlanOf(out, cat, p)
		}
	}
	return nil
}

func printRollout(ctx context.Context, out io.Writer, r *gitops.Reader, plan string, commits []gitops.Commit) error {
	st, err := r.ReadState(ctx, "", plan)
	if err != nil {
		return fmt.Errorf("read rollout %s: %w", plan, err)
	}
	if st == nil {
		return fmt.Errorf("no rollout named %q", plan)
	}
	s := st.Status
	fmt.Fprintf(out, "%s: %s at step %d, canary weight %d%%\n", plan, s.Phase, s.StepIndex, s.Weight)
	fmt.Fprintf(out, "  stable:    %s\n", describe(s.Stable))
	if !s.Candidate.IsZero() {
		fmt.Fprintf(out, "  candidate: %s\n", describe(s.Candidate))
	}
	for _, f := range s.Failed {
		fmt.Fprintf(out, "  reverted:  %s (never re-proposed)\n", describe(f))
	}
	if s.Reason != "" {
		fmt.Fprintf(out, "  reason:    %s\n", s.Reason)
	}
	fmt.Fprintln(out, "  history (one commit per transition, oldest first):")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for i := len(commits) - 1; i >= 0; i-- {
		c := commits[i]
		if p, _ := c.Trailer(canary.TrailerPlan); p != plan {
			continue
		}
		action, _ := c.Trailer(canary.TrailerAction)
		at, err := r.ReadState(ctx, c.SHA, plan)
		if err != nil || at == nil {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t\t\t%s\n", c.SHA[:10], c.Time.UTC().Format(time.RFC3339), action, c.Subject)
			continue
		}
		a := at.Status
		weight := a.Weight
		if a.Phase == canary.PhasePromoted {
			weight = 100 // the candidate became stable and takes all traffic
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\tstep %d\tweight %d%%\t%s\n", c.SHA[:10], c.Time.UTC().Format(time.RFC3339),
			action, a.StepIndex, weight, a.Reason)
	}
	return tw.Flush()
}

func describe(a canary.Artifact) string {
	if a.Version == "" {
		return a.URI
	}
	return a.Version + " " + a.URI
}
