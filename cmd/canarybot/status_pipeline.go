package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// pipelineStage is one stage of a pipeline as status shows it.
type pipelineStage struct {
	stage    canary.Stage
	upstream string // its upstream's name, "" for the first stage
	soak     string
	local    bool // its plan is in this repository, so its state was read
}

// printPipelines shows every promotion pipeline (plans whose source is
// fromPlan) of the catalog, first stage first: each stage's phase, stable
// and candidate artifacts, and a mark on a stable artifact that a stage
// downstream reverted. An upstream in another repository is named, not
// read.
func printPipelines(ctx context.Context, out io.Writer, r *gitops.Reader, c *canary.Catalog) error {
	down := map[string][]string{} // stage → its downstream stages here
	soak := map[string]string{}
	for _, e := range c.Plans {
		src := e.Plan.Spec.Model.Source.FromPlan
		if src == nil {
			continue
		}
		up := canary.Stage{Repository: src.Repository, Plan: src.Name}.String()
		down[up] = append(down[up], e.Plan.Metadata.Name)
		soak[e.Plan.Metadata.Name] = src.Soak.Or(0).String()
	}
	if len(down) == 0 {
		return nil
	}
	var roots []string
	for up := range down {
		if p, ok := c.Lookup(up); !ok || p.Spec.Model.Source.FromPlan == nil {
			roots = append(roots, up)
		}
	}
	slices.Sort(roots)
	fmt.Fprintln(out, "pipelines (spec.model.source.fromPlan), first stage first:")
	for _, root := range roots {
		stages, err := pipelineStages(ctx, r, c, root, down, soak)
		if err != nil {
			return err
		}
		printPipeline(out, c, root, stages)
	}
	fmt.Fprintln(out)
	return nil
}

// pipelineStages lists root and every stage below it, breadth first, with
// the states of those in this repository.
func pipelineStages(ctx context.Context, r *gitops.Reader, c *canary.Catalog, root string,
	down map[string][]string, soak map[string]string) ([]pipelineStage, error) {
	_, rootLocal := c.Lookup(root)
	out := []pipelineStage{{stage: canary.Stage{Plan: root}, local: rootLocal}}
	if repo, plan, ok := strings.Cut(root, ":"); ok {
		out[0].stage = canary.Stage{Repository: repo, Plan: plan}
	}
	for i := 0; i < len(out) && len(out) <= canary.MaxPlanFiles; i++ {
		name := out[i].stage.String()
		for _, d := range down[name] {
			out = append(out, pipelineStage{stage: canary.Stage{Plan: d}, upstream: name, soak: soak[d], local: true})
		}
	}
	for i := range out {
		if !out[i].local {
			continue
		}
		st, err := r.ReadState(ctx, "", out[i].stage.Plan)
		if err != nil {
			return nil, fmt.Errorf("read rollout %s: %w", out[i].stage.Plan, err)
		}
		out[i].stage.State = st
	}
	return out, nil
}

func printPipeline(out io.Writer, c *canary.Catalog, root string, stages []pipelineStage) {
	fmt.Fprintf(out, "  %s:\n", root)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for i, s := range stages {
		from := "first stage"
		if s.upstream != "" {
			from = fmt.Sprintf("from %s, soak %s", s.upstream, s.soak)
		}
		switch {
		case !s.local && s.stage.Repository != "":
			fmt.Fprintf(tw, "    %s\t%s\tin repository %s: run status there\n", s.stage, from, s.stage.Repository)
			continue
		case !s.local:
			fmt.Fprintf(tw, "    %s\t%s\tnot a valid plan here (see above): its downstream stages wait\n", s.stage, from)
			continue
		case s.stage.State == nil:
			fmt.Fprintf(tw, "    %s\t%s\tno rollout yet\n", s.stage, from)
			continue
		}
		st := s.stage.State.Status
		candidate := "-"
		if !st.Candidate.IsZero() {
			candidate = describe(st.Candidate)
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\tstable: %s\tcandidate: %s\n", s.stage, from, st.Phase, describe(st.Stable), candidate)
		var below []canary.Stage
		for _, d := range stages[i+1:] {
			if slices.Contains(c.Downstream(s.stage.Plan), d.stage.Plan) {
				below = append(below, d.stage)
			}
		}
		if by := canary.RevertedDownstream(st.Stable, below); len(by) > 0 {
			fmt.Fprintf(tw, "    \t\t\tmarked: its stable %s was reverted downstream in %s\n", describe(st.Stable),
				strings.Join(by, ", "))
		}
	}
	_ = tw.Flush()
}
