// Package statuspage serves canarybot's status web page and its JSON API,
// rebuilt from Git alone: each repository's plans (canary.Discover at the
// branch head), each rollout's state file, and the history of commits that
// carry canarybot's trailers, with the state file each of them wrote. It
// keeps no state of its own beyond a cache keyed by the branch head, so any
// process that can read the repository shows the same page: `canarybot
// status --serve`, `reconcile` and `serve`.
//
// The HTML is rendered on the server with html/template, styles and the
// optional auto-refresh script are embedded, and the judge's chart is an
// SVG drawn on the server too, so the page works without JavaScript and
// without reaching any other host.
package statuspage

import (
	"fmt"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/redact"
)

// Fleet is every rollout of every repository a page serves.
type Fleet struct {
	GeneratedAt time.Time    `json:"generatedAt"`
	Repos       []RepoStatus `json:"repos"`
}

// RepoStatus is one repository at its branch head.
type RepoStatus struct {
	Repo string `json:"repo"`
	Head string `json:"head,omitempty"`
	// PlansDir is where the repository keeps its plans.
	PlansDir string `json:"plansDir,omitempty"`
	// ConfigError is set when .canarybot/config.yaml is invalid.
	ConfigError string `json:"configError,omitempty"`
	// Error is set when the repository could not be read at all.
	Error    string           `json:"error,omitempty"`
	Rollouts []RolloutSummary `json:"rollouts"`
	Invalid  []InvalidPlan    `json:"invalid,omitempty"`
}

// InvalidPlan is a plan file (or document) the bot does not drive.
type InvalidPlan struct {
	Where string `json:"where"`
	Name  string `json:"name,omitempty"`
	Error string `json:"error"`
}

// Plan states: whether a valid plan drives the rollout.
const (
	PlanDriven  = "driven"
	PlanInvalid = "invalid"
	PlanDeleted = "deleted"
	// PlanUnknown: the repository keeps no plans where the bot discovers
	// them (a plan driven with --plan), so the page cannot tell.
	PlanUnknown = "unknown"
)

// PhaseWaiting is the phase shown for a valid plan with no state file yet.
const PhaseWaiting = "Waiting"

// RolloutSummary is one plan's rollout as the fleet view lists it.
type RolloutSummary struct {
	Repo string `json:"repo"`
	Plan string `json:"plan"`
	// PlanPath is the file of the plan that drives the rollout.
	PlanPath  string `json:"planPath,omitempty"`
	PlanState string `json:"planState"`
	// PlanError says why the plan is invalid.
	PlanError string       `json:"planError,omitempty"`
	Phase     string       `json:"phase"`
	Step      int          `json:"step"`
	Steps     int          `json:"steps,omitempty"`
	StepName  string       `json:"stepName,omitempty"`
	Weight    int          `json:"weight"`
	Stable    ArtifactView `json:"stable"`
	Canary    ArtifactView `json:"canary,omitzero"`
	// Failed are the artifacts reverted before, never proposed again.
	Failed []ArtifactView `json:"failed,omitempty"`
	// Upstream, for a pipeline stage, is the stage its source is fromPlan
	// of: plan, or repository:plan.
	Upstream string `json:"upstream,omitempty"`
	// RevertedDownstream names the stages below this one, in this
	// repository, that reverted its stable artifact, which it keeps
	// serving.
	RevertedDownstream []string `json:"revertedDownstream,omitempty"`
	// LastAction, LastAt and Reason are the last transition's.
	LastAction       string    `json:"lastAction,omitempty"`
	LastAt           time.Time `json:"lastAt,omitzero"`
	Reason           string    `json:"reason,omitempty"`
	RolloutStartedAt time.Time `json:"rolloutStartedAt,omitzero"`
	StepStartedAt    time.Time `json:"stepStartedAt,omitzero"`
	// InStep is how long the rollout has been in its current step, at
	// GeneratedAt; zero for a finished or never-started rollout.
	InStep        string  `json:"inStep,omitempty"`
	InStepSeconds float64 `json:"inStepSeconds,omitempty"`
}

// Active reports whether the rollout is under way (a canary is serving).
func (r RolloutSummary) Active() bool {
	return r.Phase == canary.PhaseProgressing || r.Phase == canary.PhasePaused
}

// ArtifactView is an artifact as the page shows it.
type ArtifactView struct {
	URI     string `json:"uri,omitempty"`
	Version string `json:"version,omitempty"`
	// Digest is the artifact's digest shortened to 12 hex digits, when
	// its URI pins one.
	Digest string `json:"digest,omitempty"`
}

// Label is the version, else the URI.
func (a ArtifactView) Label() string {
	if a.Version != "" {
		return a.Version
	}
	return a.URI
}

// artifactView shows a, its URI without credentials.
func artifactView(a canary.Artifact) ArtifactView {
	v := ArtifactView{URI: redact.URL(a.URI), Version: a.Version}
	if _, d, ok := strings.Cut(a.URI, "@"); ok {
		if algo, hex, ok := strings.Cut(d, ":"); ok {
			v.Digest = algo + ":" + hex[:min(12, len(hex))]
		}
	}
	return v
}

// Rollout is one plan's rollout in full: the rollout view.
type Rollout struct {
	RolloutSummary
	GeneratedAt time.Time `json:"generatedAt"`
	Head        string    `json:"head"`
	// StepsPlan lists the plan's steps, with the rollout's place in them.
	StepsPlan []StepView `json:"stepsPlan,omitempty"`
	// Transitions are the commits of the current (or last) rollout,
	// oldest first; Earlier the ones before it, newest first.
	Transitions []Transition `json:"transitions"`
	Earlier     []Transition `json:"earlier,omitempty"`
	// Gates are the last analysis results the state records.
	Gates []Gate `json:"gates"`
	// Judges chart each judge gate's estimates over the rollout.
	Judges []JudgeChart `json:"judges,omitempty"`
}

// StepView is one step of the plan.
type StepView struct {
	Index  int    `json:"index"`
	What   string `json:"what"`
	Status string `json:"status"`
}

// Transition is one commit that moved the rollout.
type Transition struct {
	Commit  string    `json:"commit"`
	Short   string    `json:"short"`
	URL     string    `json:"url,omitempty"`
	PR      int       `json:"pr,omitempty"`
	PRURL   string    `json:"prURL,omitempty"`
	At      time.Time `json:"at"`
	Author  string    `json:"author,omitempty"`
	Action  string    `json:"action"`
	Step    int       `json:"step"`
	Weight  int       `json:"weight"`
	Subject string    `json:"subject"`
	Reason  string    `json:"reason,omitempty"`
}

// Gate is one gate's last result.
type Gate struct {
	Gate    string `json:"gate"`
	Type    string `json:"type,omitempty"`
	Verdict string `json:"verdict"`
	// Query is the PromQL or signal the gate measured.
	Query  string `json:"query,omitempty"`
	Window string `json:"window,omitempty"`
	// Observed is the latest value, or the judge's estimates.
	Observed string `json:"observed,omitempty"`
	// Bounds are the condition or the judge's decision rule.
	Bounds       string `json:"bounds,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Successful   int    `json:"successful,omitempty"`
	Failed       int    `json:"failed,omitempty"`
	Inconclusive int    `json:"inconclusive,omitempty"`
	Errors       int    `json:"errors,omitempty"`
}

// VerdictClass is the CSS class of a verdict; the page always writes the
// verdict's word beside its colour.
func VerdictClass(v string) string {
	switch canary.Verdict(v) {
	case canary.VerdictSuccessful:
		return "ok"
	case canary.VerdictFailed, canary.VerdictError:
		return "bad"
	case canary.VerdictInconclusive:
		return "warn"
	}
	return "neutral"
}

// PhaseClass is the CSS class of a phase.
func PhaseClass(phase string) string {
	switch phase {
	case canary.PhasePromoted:
		return "ok"
	case canary.PhaseReverted:
		return "bad"
	case canary.PhasePaused:
		return "warn"
	case canary.PhaseProgressing:
		return "live"
	}
	return "neutral"
}

// describeStep says what a plan step does.
func describeStep(s canary.Step) string {
	switch {
	case s.SetWeight != nil:
		return fmt.Sprintf("set canary weight %d%%", *s.SetWeight)
	case s.Pause != nil && s.Pause.UntilApproved:
		return "pause until approved"
	case s.Pause != nil && s.Pause.Duration != nil:
		return "pause " + s.Pause.Duration.String()
	case s.Analysis != nil:
		return "analysis: " + strings.Join(s.Analysis.Gates, ", ")
	case s.DescribeRoute() != "":
		return s.DescribeRoute()
	}
	return "?"
}

// humanDuration renders d to the second, at most two units.
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %02dh", int(d.Hours())/24, int(d.Hours())%24)
}
