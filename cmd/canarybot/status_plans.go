package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// catalogAt discovers the plans at the branch head, as the bot does.
func catalogAt(ctx context.Context, r *gitops.Reader) (*canary.Catalog, error) {
	t, err := r.Tree(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("read head: %w", err)
	}
	c, err := canary.Discover(t)
	if err != nil {
		return nil, fmt.Errorf("discover plans: %w", err)
	}
	return c, nil
}

// printCatalog summarises the plans the bot would drive: how many, every
// invalid one with all its errors, and the valid ones not rolled out yet.
func printCatalog(out io.Writer, c *canary.Catalog, rollouts []string) {
	fmt.Fprintf(out, "plans under %s at %s: %d valid, %d invalid\n", c.PlansDir, short(c.Head), len(c.Plans), len(c.Invalid))
	if c.ConfigErr != nil {
		fmt.Fprintf(out, "  config:    %s (the default %s is used)\n", oneLine(c.ConfigErr), canary.DefaultPlansDir)
	}
	for _, p := range c.Invalid {
		fmt.Fprintf(out, "  invalid:   %s: not driven: %s\n", p.Where(), oneLine(p.Err))
	}
	for _, e := range c.Plans {
		if !slices.Contains(rollouts, e.Plan.Metadata.Name) {
			fmt.Fprintf(out, "  waiting:   %s (%s): no rollout yet\n", e.Plan.Metadata.Name, e.Path)
		}
	}
	fmt.Fprintln(out)
}

// printPlanOf says which plan drives a rollout, or why none does.
func printPlanOf(out io.Writer, c *canary.Catalog, name string) {
	for _, e := range c.Plans {
		if e.Plan.Metadata.Name == name {
			fmt.Fprintf(out, "  plan:      %s\n", canary.PlanProblem{Path: e.Path, Doc: e.Doc}.Where())
			return
		}
	}
	if p, ok := c.Problem(name); ok {
		fmt.Fprintf(out, "  plan:      %s is invalid, so the rollout is not driven: %s\n", p.Where(), oneLine(p.Err))
		return
	}
	fmt.Fprintf(out, "  plan:      deleted: no longer driven; the rollout is held where it is\n")
}

func short(sha string) string {
	if len(sha) > 10 {
		return sha[:10]
	}
	return sha
}
