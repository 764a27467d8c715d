package canary

import (
	"fmt"
	"strconv"
	"time"
)

// Apply returns the state after a committing decision. It is pure: the
// engine writes its result, with the rendered overlay, in one commit.
func Apply(plan *CanaryPlan, st *RolloutState, d Decision, now time.Time) *RolloutState {
	next := *st
	s := &next.Status
	s.History = append([]HistoryEntry(nil), st.Status.History...)
	s.Failed = append([]Artifact(nil), st.Status.Failed...)
	s.StepStartedAt = now.UTC()
	s.Reason = d.Reason
	if d.Gates != nil {
		s.Gates = d.Gates
	}
	if d.Request != "" {
		s.LastRequest = d.Request
	}
	artifact := s.Candidate
	switch d.Action {
	case ActStart:
		s.Phase, s.Candidate, s.Gates, s.RolloutStartedAt = PhaseProgressing, d.Candidate, nil, now.UTC()
		s.StepIndex, s.Weight, s.StepsHash = d.Step, d.Weight, StepsHash(plan.Spec.Steps)
		s.Templates = TemplateHashes(plan)
		s.Routes = routesOf(RoutesAt(plan.Spec.Steps, d.Step))
		artifact = d.Candidate
	case ActAdvance:
		s.Phase, s.StepIndex, s.Weight, s.StepsHash = PhaseProgressing, d.Step, d.Weight, StepsHash(plan.Spec.Steps)
		s.Templates = TemplateHashes(plan)
		s.Routes = routesOf(RoutesAt(plan.Spec.Steps, d.Step))
	case ActHold:
		s.Phase = PhasePaused
	case ActPromote:
		s.Phase, s.Stable, s.Candidate, s.Weight, s.Routes = PhasePromoted, s.Candidate, Artifact{}, 0, nil
		s.PromotedAt = now.UTC()
	case ActRevert:
		if !s.Candidate.IsZero() && !s.IsFailed(s.Candidate.URI) {
			s.Failed = append(s.Failed, s.Candidate)
		}
		if n := len(s.Failed); n > MaxFailed {
			s.Failed = s.Failed[n-MaxFailed:]
		}
		s.Phase, s.Candidate, s.Weight, s.Routes = PhaseReverted, Artifact{}, 0, nil
	default:
		panic(fmt.Sprintf("canary: Apply called with non-committing action %q", d.Action))
	}
	weight := s.Weight
	if d.Action == ActPromote {
		weight = 100
	}
	s.History = append(s.History, HistoryEntry{
		At: now.UTC(), Action: string(d.Action), Step: s.StepIndex, Weight: weight,
		Artifact: artifact.URI, Reason: d.Reason,
	})
	if n := len(s.History); n > MaxHistory {
		s.History = s.History[n-MaxHistory:]
	}
	return &next
}

// DesiredOf is the traffic split a state asks the overlay to express.
func DesiredOf(st *RolloutState) Desired {
	s := st.Status
	d := Desired{Stable: s.Stable.Location(), Canary: s.Candidate.Location(), CanaryWeight: s.Weight}
	if s.Routes != nil && !s.Candidate.IsZero() {
		r := *s.Routes
		d.Routes = &r
	}
	return d
}

// CommitMessage builds the subject, body and trailers of a transition.
func CommitMessage(plan *CanaryPlan, before, after *RolloutState, d Decision) Change {
	a := after.Status
	artifact := a.Candidate
	if artifact.IsZero() {
		artifact = before.Status.Candidate
	}
	if artifact.IsZero() {
		artifact = a.Stable
	}
	var subject string
	switch d.Action {
	case ActStart:
		subject = fmt.Sprintf("canary(%s): start %s at %d%%", plan.Metadata.Name, versionOf(artifact), a.Weight)
	case ActAdvance:
		subject = fmt.Sprintf("canary(%s): step %d, weight %d%%", plan.Metadata.Name, a.StepIndex, a.Weight)
	case ActHold:
		subject = fmt.Sprintf("canary(%s): hold at step %d", plan.Metadata.Name, a.StepIndex)
	case ActPromote:
		subject = fmt.Sprintf("canary(%s): promote %s to 100%%", plan.Metadata.Name, versionOf(artifact))
	case ActRevert:
		subject = fmt.Sprintf("canary(%s): revert %s", plan.Metadata.Name, versionOf(artifact))
	}
	body := d.Reason
	for _, g := range d.Gates {
		body += fmt.Sprintf("\n- gate %s: %s %s", g.Gate, g.Verdict, g.Reason)
	}
	return Change{
		Subject: subject,
		Body:    body,
		Trailers: []Trailer{
			{TrailerPlan, plan.Metadata.Name},
			{TrailerStep, strconv.Itoa(a.StepIndex)},
			{TrailerAction, string(d.Action)},
			{TrailerArtifact, artifact.URI},
		},
	}
}

func versionOf(a Artifact) string {
	if a.Version != "" {
		return a.Version
	}
	return a.URI
}
