package statuspage

import "github.com/canarybot/canarybot/pkg/canary"

// markPipelines fills in each pipeline stage's upstream, and marks a
// stage's stable artifact that a stage below it in this repository
// reverted.
func (s *snapshot) markPipelines() {
	if s.cat == nil {
		return
	}
	for i := range s.status.Rollouts {
		sum := &s.status.Rollouts[i]
		plan, _ := s.plan(sum.Plan)
		if plan == nil {
			continue
		}
		if src := plan.Spec.Model.Source.FromPlan; src != nil {
			sum.Upstream = canary.Stage{Repository: src.Repository, Plan: src.Name}.String()
		}
		st := s.states[sum.Plan]
		if st == nil {
			continue
		}
		var below []canary.Stage
		for _, d := range s.cat.Downstream(sum.Plan) {
			below = append(below, canary.Stage{Plan: d, State: s.states[d]})
		}
		sum.RevertedDownstream = canary.RevertedDownstream(st.Status.Stable, below)
	}
}
