package canary

import (
	"fmt"
	"slices"
	"strings"
)

// refusePipelines moves to problems every plan whose fromPlan source, in
// its own repository, names no plan there, and every plan on a cycle of
// fromPlan sources; each error names the path. An upstream that exists
// but is invalid is not the downstream's problem: the downstream waits.
// Upstreams in other repositories are checked when the bot reads them.
func refusePipelines(plans []PlanEntry, problems []PlanProblem) ([]PlanEntry, []PlanProblem) {
	upstream := map[string]string{} // plan → same-repository upstream
	known := map[string]bool{}
	for _, e := range plans {
		known[e.Plan.Metadata.Name] = true
		if src := e.Plan.Spec.Model.Source.FromPlan; src != nil && src.Repository == "" {
			upstream[e.Plan.Metadata.Name] = src.Name
		}
	}
	for _, p := range problems {
		if p.Name != "" {
			known[p.Name] = true
		}
	}
	var keep []PlanEntry
	for _, e := range plans {
		name := e.Plan.Metadata.Name
		if err := pipelineError(name, upstream, known); err != nil {
			problems = append(problems, PlanProblem{Path: e.Path, Doc: e.Doc, Name: name, Err: err})
			continue
		}
		keep = append(keep, e)
	}
	return keep, problems
}

// pipelineError follows name's same-repository upstreams: an unknown one,
// or a way back to name, is an error naming the path.
func pipelineError(name string, upstream map[string]string, known map[string]bool) error {
	const f = "spec.model.source.fromPlan"
	path := []string{name}
	for cur := name; ; {
		up, ok := upstream[cur]
		if !ok {
			return nil
		}
		path = append(path, up)
		switch {
		case up == name:
			return fmt.Errorf("%w: %s: cycle %s", ErrInvalidPlan, f, strings.Join(path, " → "))
		case !known[up] && cur == name:
			return fmt.Errorf("%w: %s.name: no plan named %q in this repository (%s)", ErrInvalidPlan, f, up,
				strings.Join(path, " → "))
		case !known[up], slices.Contains(path[:len(path)-1], up):
			return nil // reported on the upstream's own plan; name waits for it
		case len(path) > MaxPipelineStages+1:
			return fmt.Errorf("%w: %s: more than %d upstream stages: %s", ErrInvalidPlan, f, MaxPipelineStages,
				strings.Join(path, " → "))
		}
		cur = up
	}
}

// Downstream lists the valid plans of c below the stage named up in its
// pipelines, nearest first: those whose fromPlan source names it, then
// theirs, and so on. up is a plan of c, or repository:plan for an
// upstream in another repository.
func (c *Catalog) Downstream(up string) []string {
	var out []string
	seen := map[string]bool{up: true}
	for next := []string{up}; len(next) > 0; {
		cur := next[0]
		next = next[1:]
		for _, e := range c.Plans {
			src, name := e.Plan.Spec.Model.Source.FromPlan, e.Plan.Metadata.Name
			if src == nil || seen[name] || (Stage{Repository: src.Repository, Plan: src.Name}).String() != cur {
				continue
			}
			seen[name] = true
			out = append(out, name)
			next = append(next, name)
		}
	}
	return out
}
