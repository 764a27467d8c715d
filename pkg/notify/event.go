// Package notify tells people what canarybot did, from Git: each
// transition commit on the GitOps branch (its Canarybot-* trailers and the
// state file it wrote) becomes rollout events (started, advanced,
// awaitingApproval, held, promoted, reverted), and a plan file that turns
// invalid becomes a planInvalid event. Events go to the channels of
// spec.notifications (or the repository's defaults in
// .canarybot/config.yaml): Slack incoming webhooks and signed generic
// webhooks.
//
// Delivery is at least once and in order, per channel. Each channel keeps
// a cursor, the last commit whose events it has all delivered, as a ref
// on the remote (refs/canarybot/notified/<channel>), moved by
// compare-and-swap after delivery; a crash repeats at most the events
// after the cursor, and never loses one. Event ids (<commit>/<event>) are
// stable, so receivers can drop repeats.
//
// This file derives events from commits; it is pure.
package notify

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/redact"
)

// Commit is one commit of the GitOps branch.
type Commit struct {
	SHA string
	// Time is the commit's author time.
	Time     time.Time
	Trailers []canary.Trailer
}

// Trailer returns the last value of the trailer key (compared without
// case, as Git does), or "".
func (c Commit) Trailer(key string) string {
	for i := len(c.Trailers) - 1; i >= 0; i-- {
		if strings.EqualFold(c.Trailers[i].Key, key) {
			return c.Trailers[i].Value
		}
	}
	return ""
}

// Event is one notification: what happened to a plan's rollout, at which
// commit, with the evidence the state file recorded.
type Event struct {
	// ID is "<commit>/<type>", or "<head>/planInvalid/<path>": stable, so
	// that a receiver can drop a repeat.
	ID   string
	Type string
	Plan string
	// Commit is the transition commit (for planInvalid, the head where the
	// plan was found invalid).
	Commit string
	At     time.Time
	Step   int
	Weight int
	Stable canary.Artifact
	// Candidate is the artifact the transition is about (for a promotion,
	// the new stable one; for a revert, the one reverted).
	Candidate canary.Artifact
	Reason    string
	Gates     []canary.GateResult
	// DecidingGate names the gate behind a revert or hold, when one was.
	DecidingGate string
	// Path and Errors describe a planInvalid event.
	Path   string
	Errors []string

	// Repository and CommitURL are filled in by the Notifier.
	Repository string
	CommitURL  string
}

// Gate returns the deciding gate's result.
func (e Event) Gate() (canary.GateResult, bool) {
	for _, g := range e.Gates {
		if g.Gate == e.DecidingGate && e.DecidingGate != "" {
			return g, true
		}
	}
	return canary.GateResult{}, false
}

// eventOf maps a transition's Canarybot-Action to its event.
var eventOf = map[string]string{
	string(canary.ActStart):   canary.EventStarted,
	string(canary.ActAdvance): canary.EventAdvanced,
	string(canary.ActHold):    canary.EventHeld,
	string(canary.ActPromote): canary.EventPromoted,
	string(canary.ActRevert):  canary.EventReverted,
}

// Derive returns the events of one commit: none unless it is a transition
// (Canarybot-Plan and a Canarybot-Action of start, advance, hold, promote
// or revert); then its event, and awaitingApproval after it when the step
// it moved to is a pause-until-approved step of plan. st is the plan's
// state at the commit and plan the plan at the commit; either may be nil
// when it cannot be read, and the event then carries what the trailers
// say.
func Derive(c Commit, st *canary.RolloutState, plan *canary.CanaryPlan) []Event {
	name, action := c.Trailer(canary.TrailerPlan), c.Trailer(canary.TrailerAction)
	typ, ok := eventOf[action]
	if name == "" || !ok {
		return nil
	}
	e := Event{ID: c.SHA + "/" + typ, Type: typ, Plan: name, Commit: c.SHA, At: c.Time,
		Candidate: canary.Artifact{URI: c.Trailer(canary.TrailerArtifact)}}
	step, err := strconv.Atoi(c.Trailer(canary.TrailerStep))
	if st != nil {
		fromState(&e, st.Status, action)
		if err != nil {
			step = st.Status.StepIndex
		}
	}
	e.Step = step
	if typ == canary.EventPromoted {
		e.Weight = 100
	}
	if typ == canary.EventReverted || typ == canary.EventHeld {
		e.DecidingGate = decidingGate(e.Reason, e.Gates)
	}
	out := []Event{sanitize(e)}
	if (typ == canary.EventStarted || typ == canary.EventAdvanced) && pausesForApproval(plan, step) {
		a := e
		a.ID, a.Type = c.SHA+"/"+canary.EventAwaitingApproval, canary.EventAwaitingApproval
		out = append(out, sanitize(a))
	}
	return out
}

// fromState fills e from the state the transition wrote.
func fromState(e *Event, s canary.StateStatus, action string) {
	e.Reason, e.Weight, e.Stable, e.Gates = s.Reason, s.Weight, s.Stable, s.Gates
	if n := len(s.History); n > 0 && s.History[n-1].Action == action {
		e.Weight = s.History[n-1].Weight
		if e.Reason == "" {
			e.Reason = s.History[n-1].Reason
		}
	}
	if e.Candidate.URI == "" {
		e.Candidate = s.Candidate
	}
	// The trailer names the artifact by URI; the state knows its version.
	for _, a := range slices.Concat([]canary.Artifact{s.Candidate, s.Stable}, s.Failed) {
		if a.URI != "" && a.URI == e.Candidate.URI {
			e.Candidate = a
			break
		}
	}
}

// pausesForApproval reports whether step of plan is pause-until-approved.
func pausesForApproval(plan *canary.CanaryPlan, step int) bool {
	if plan == nil || step < 0 || step >= len(plan.Spec.Steps) {
		return false
	}
	p := plan.Spec.Steps[step].Pause
	return p != nil && p.UntilApproved
}

// decidingGate names the gate behind a revert or hold: the gate the
// reason names ("gate NAME …"), else the first that Failed, then the
// first in Error, then the first Inconclusive; "" when none did (a sync
// failure, a person's abort).
func decidingGate(reason string, gates []canary.GateResult) string {
	for _, g := range gates {
		if g.Gate != "" && strings.Contains(reason, "gate "+g.Gate+" ") {
			return g.Gate
		}
	}
	for _, v := range []canary.Verdict{canary.VerdictFailed, canary.VerdictError, canary.VerdictInconclusive} {
		for _, g := range gates {
			if g.Verdict == v {
				return g.Gate
			}
		}
	}
	return ""
}

// DeriveInvalid returns a planInvalid event for each plan file invalid
// at head (after) that was not invalid at the cursor (before), in path
// order, keyed by head and path.
func DeriveInvalid(head Commit, before, after []canary.PlanProblem) []Event {
	was := map[string]bool{}
	for _, p := range before {
		was[p.Path] = true
	}
	var out []Event
	for _, p := range after {
		if was[p.Path] {
			continue
		}
		was[p.Path] = true
		var errs []string
		for _, line := range strings.Split(p.Err.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				errs = append(errs, line)
			}
		}
		out = append(out, sanitize(Event{
			ID: head.SHA + "/" + canary.EventPlanInvalid + "/" + p.Path, Type: canary.EventPlanInvalid,
			Plan: p.Name, Commit: head.SHA, At: head.Time, Path: p.Path, Errors: errs,
			Reason: p.Where() + " is invalid; the plan is not driven until it is fixed",
		}))
	}
	return out
}

// sanitize hides URL credentials in every free text of e: reasons and
// errors quote whatever a registry, Prometheus or a plan held.
func sanitize(e Event) Event {
	e.Reason = redact.URL(e.Reason)
	e.Candidate.URI, e.Stable.URI = redact.URL(e.Candidate.URI), redact.URL(e.Stable.URI)
	e.Candidate.StorageURI, e.Stable.StorageURI = redact.URL(e.Candidate.StorageURI), redact.URL(e.Stable.StorageURI)
	if e.Errors != nil {
		errs := make([]string, len(e.Errors))
		for i, s := range e.Errors {
			errs[i] = redact.URL(s)
		}
		e.Errors = errs
	}
	if e.Gates != nil {
		gates := make([]canary.GateResult, len(e.Gates))
		for i, g := range e.Gates {
			g.Query, g.Reason, g.Measurements = redact.URL(g.Query), redact.URL(g.Reason), nil
			gates[i] = g
		}
		e.Gates = gates
	}
	return e
}

// ShortDigest abbreviates an artifact for people: the first 12 hex digits
// of its sha256 digest (sha256:0123456789ab), else its version, else its
// URI.
func ShortDigest(a canary.Artifact) string {
	if _, d, ok := strings.Cut(a.URI, "@sha256:"); ok && len(d) >= 12 {
		return "sha256:" + d[:12]
	}
	if a.Version != "" {
		return a.Version
	}
	return a.URI
}
