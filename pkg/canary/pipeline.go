package canary

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// FromPlanSource makes a plan a stage of a promotion pipeline: it
// proposes exactly the artifact (the same URI: digest, MLflow version)
// that its upstream plan promoted, once the upstream has held it promoted
// for Soak. An artifact reverted in any upstream stage is never proposed.
type FromPlanSource struct {
	// Name is the upstream plan's metadata.name.
	Name string `json:"name"`
	// Repository is the upstream's repository, owner/name, when it lives
	// in another repository this canarybot serves; empty for the plan's
	// own repository.
	Repository string `json:"repository,omitempty"`
	// Soak is how long the upstream must have held the artifact promoted
	// before it is proposed here; none when empty.
	Soak *Duration `json:"soak,omitempty"`
}

// MaxPipelineStages bounds how many upstream stages a plan may have.
const MaxPipelineStages = 16

var repoName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$`)

func validateFromPlan(fp FromPlanSource, add addFunc) {
	const f = "spec.model.source.fromPlan."
	switch {
	case fp.Name == "":
		add(f+"name", "is required: the upstream plan's metadata.name")
	case !validName(fp.Name):
		add(f+"name", "must be a plan name (a DNS label), got %q", fp.Name)
	}
	if r := fp.Repository; r != "" && (!repoName.MatchString(r) || strings.Contains(r, "..")) {
		add(f+"repository", "must be owner/name of a repository this canarybot serves, got %q", r)
	}
	if fp.Soak != nil && fp.Soak.Duration < 0 {
		add(f+"soak", "must not be negative, got %s", fp.Soak.Duration)
	}
}

// Stage is one upstream stage of a pipeline as read from Git.
type Stage struct {
	// Repository is where the stage's plan lives; empty for the
	// downstream plan's own repository.
	Repository string
	Plan       string
	// State is the stage's rollout state; nil before its first rollout.
	State *RolloutState
	// PromotionLanded, when known, is when the commit recording the
	// stage's promotion landed on its branch; a promotion merged (as a
	// pull request) later than it was decided soaks from then.
	PromotionLanded time.Time
}

// String names the stage: plan, or repository:plan.
func (s Stage) String() string {
	if s.Repository == "" {
		return s.Plan
	}
	return s.Repository + ":" + s.Plan
}

// UpstreamOffer is what a stage's upstream offers it: the artifact to
// propose, or, when none, why and until when (zero: poll).
type UpstreamOffer struct {
	Candidate *Artifact
	Reason    string
	Until     time.Time
}

// OfferFromUpstream is the artifact a plan whose source is src may
// propose: what its upstream (chain[0]) promoted, once held promoted for
// src.Soak. chain lists the upstream stages nearest first (chain[1] is
// chain[0]'s upstream, and so on). An artifact any of them reverted is
// never offered. Waiting is a value: the offer then has no candidate.
func OfferFromUpstream(src FromPlanSource, chain []Stage, now time.Time) UpstreamOffer {
	if len(chain) == 0 {
		return UpstreamOffer{Reason: fmt.Sprintf("upstream %s was not read", src.Name)}
	}
	up := chain[0]
	if up.State == nil {
		return UpstreamOffer{Reason: fmt.Sprintf("upstream %s has not rolled anything out yet", up)}
	}
	s := up.State.Status
	if s.Stable.IsZero() || s.PromotedAt.IsZero() {
		return UpstreamOffer{Reason: fmt.Sprintf("upstream %s has promoted nothing yet", up)}
	}
	a := s.Stable
	for _, st := range chain {
		if st.State != nil && st.State.Status.IsFailed(a.URI) {
			return UpstreamOffer{Reason: fmt.Sprintf("%s was reverted in stage %s; it is never proposed downstream", label(a), st)}
		}
	}
	at := s.PromotedAt
	if up.PromotionLanded.After(at) {
		at = up.PromotionLanded
	}
	if until := at.Add(src.Soak.Or(0)); now.Before(until) {
		return UpstreamOffer{Until: until, Reason: fmt.Sprintf("upstream %s promoted %s at %s; soaking until %s", up, label(a),
			at.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))}
	}
	return UpstreamOffer{Candidate: &a}
}

// RevertedDownstream names the stages, among downstream, that reverted a:
// an artifact upstream keeps serving is marked with them.
func RevertedDownstream(a Artifact, downstream []Stage) []string {
	if a.IsZero() {
		return nil
	}
	var out []string
	for _, st := range downstream {
		if st.State != nil && st.State.Status.IsFailed(a.URI) {
			out = append(out, st.String())
		}
	}
	return out
}
