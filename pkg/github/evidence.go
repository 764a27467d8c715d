package github

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Meta identifies the transition a canarybot pull request carries. It is
// read from the change's trailers and written into the PR body as a hidden
// marker, so that any later tick (or restart) finds the PR again.
type Meta struct {
	Plan, Action, Artifact string
	Step                   int
	// Approves is the pause-until-approved step this PR asks approval for,
	// or -1 when it is not an approval request.
	Approves int
}

// MetaOf reads a change's trailers.
func MetaOf(ch *canary.Change) (Meta, error) {
	m := Meta{Approves: -1}
	step := ""
	for _, t := range ch.Trailers {
		switch t.Key {
		case canary.TrailerPlan:
			m.Plan = t.Value
		case canary.TrailerAction:
			m.Action = t.Value
		case canary.TrailerArtifact:
			m.Artifact = t.Value
		case canary.TrailerStep:
			step = t.Value
		}
	}
	n, err := strconv.Atoi(step)
	if m.Plan == "" || m.Action == "" || m.Artifact == "" || err != nil {
		return m, fmt.Errorf("change %q lacks the %s, %s, %s and %s trailers", ch.Subject,
			canary.TrailerPlan, canary.TrailerStep, canary.TrailerAction, canary.TrailerArtifact)
	}
	m.Step = n
	return m, nil
}

// BranchPrefix starts every branch canarybot opens pull requests from.
const BranchPrefix = "canarybot/"

// Branch is canarybot/<plan>/<short digest or version> for an artifact.
func Branch(plan, artifact string) string {
	return BranchPrefix + plan + "/" + shortID(artifact)
}

// PlanOfBranch returns the plan a canarybot branch belongs to.
func PlanOfBranch(branch string) (string, bool) {
	rest, ok := strings.CutPrefix(branch, BranchPrefix)
	if !ok {
		return "", false
	}
	plan, _, ok := strings.Cut(rest, "/")
	return plan, ok && plan != ""
}

var unsafeRef = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// shortID is the first 12 hex digits of a digest, or else a ref-safe form
// of the artifact's last path element (an MLflow version, an S3 version).
func shortID(artifact string) string {
	if _, d, ok := strings.Cut(artifact, "@sha256:"); ok && len(d) >= 12 {
		return d[:12]
	}
	i := strings.LastIndexAny(artifact, "/=")
	s := strings.Trim(unsafeRef.ReplaceAllString(artifact[i+1:], "-"), ".-")
	if s == "" {
		s = "artifact"
	}
	return s
}

const markerPrefix = "<!-- canarybot:"

// marker is the hidden line that ties a PR body to its transition.
func (m Meta) marker() string {
	return fmt.Sprintf("%splan=%s step=%d action=%s artifact=%s approves=%d -->",
		markerPrefix, m.Plan, m.Step, m.Action, m.Artifact, m.Approves)
}

var markerRe = regexp.MustCompile(`<!-- canarybot:plan=(\S+) step=(\d+) action=(\S+) artifact=(\S+) approves=(-?\d+) -->`)

// ParseMarker reads the Meta back from a PR body.
func ParseMarker(body string) (Meta, bool) {
	m := markerRe.FindStringSubmatch(body)
	if m == nil {
		return Meta{}, false
	}
	step, err1 := strconv.Atoi(m[2])
	approves, err2 := strconv.Atoi(m[5])
	return Meta{Plan: m[1], Step: step, Action: m[3], Artifact: m[4], Approves: approves}, err1 == nil && err2 == nil
}

// Body renders a pull request description: the artifact and its digest,
// where the rollout stands, and the gate evidence.
func Body(m Meta, ch *canary.Change) string {
	awaitingApproval := m.Approves >= 0
	var b strings.Builder
	b.WriteString(m.marker() + "\n")
	fmt.Fprintf(&b, "## %s\n\n", ch.Subject)
	fmt.Fprintf(&b, "**Artifact:** `%s`  \n**Digest / version:** `%s`  \n", m.Artifact, digestOf(m.Artifact))
	if e := ch.Evidence; e != nil {
		fmt.Fprintf(&b, "**Stable:** `%s`  \n", e.Before.Status.Stable.URI)
		fmt.Fprintf(&b, "**Decision:** %s — %s\n\n", e.Decision.Action, mdEscape(e.Decision.Reason))
		b.WriteString(StepTable(e))
		b.WriteString("\n" + GateTable(e.Gates()))
	} else {
		fmt.Fprintf(&b, "\n%s\n", mdEscape(ch.Body))
	}
	b.WriteString("\n")
	if awaitingApproval {
		b.WriteString("**This step waits for approval.** Approve this pull request (a reviewer with write access), " +
			"or comment `/canarybot promote`, and canarybot merges it and continues.\n")
	} else {
		b.WriteString("canarybot merges this pull request itself once required checks pass.\n")
	}
	b.WriteString("\nCommands (write access): `/canarybot promote`, `/canarybot pause`, `/canarybot resume`, `/canarybot abort [reason]`, `/canarybot status`.\n")
	return b.String()
}

func digestOf(uri string) string {
	if _, d, ok := strings.Cut(uri, "@"); ok {
		return d
	}
	return shortID(uri)
}

// StepTable lists the plan's steps as done, this change, or to come.
func StepTable(e *canary.Evidence) string {
	var b strings.Builder
	b.WriteString("### Steps\n\n| # | step | status |\n|---|---|---|\n")
	after := e.After.Status
	for i, s := range e.Plan.Spec.Steps {
		status := "to come"
		switch {
		case after.Phase == canary.PhaseReverted:
			status = "reverted"
		case after.Phase == canary.PhasePromoted || i < after.StepIndex:
			status = "done"
		case i == after.StepIndex && e.Decision.Action == canary.ActHold:
			status = "**held here**"
		case i == after.StepIndex:
			status = "**this change**"
		case i == after.StepIndex+1:
			status = "next"
		}
		fmt.Fprintf(&b, "| %d | %s | %s |\n", i, describeStep(s), status)
	}
	return b.String()
}

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

// GateTable renders gate results: what was measured, over which window,
// what was seen, against what, and the verdict.
func GateTable(gates []canary.GateResult) string {
	if len(gates) == 0 {
		return "### Gates\n\nNo gate results yet.\n"
	}
	var b strings.Builder
	b.WriteString("### Gates\n\n| gate | verdict | query | window | observed | threshold / judge bounds |\n|---|---|---|---|---|---|\n")
	for _, g := range gates {
		bound := g.Condition
		if g.Reason != "" {
			bound = strings.TrimSpace(bound + " " + g.Reason)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", mdEscape(g.Gate), verdictMark(g.Verdict), code(g.Query),
			mdEscape(g.Window), code(g.Value), mdEscape(bound))
	}
	return b.String()
}

func verdictMark(v canary.Verdict) string {
	switch v {
	case canary.VerdictSuccessful:
		return "✅ " + string(v)
	case canary.VerdictFailed:
		return "❌ " + string(v)
	}
	return "⚠️ " + string(v)
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(mdEscape(s), "`", "'") + "`"
}

// mdEscape keeps a value inside one table cell.
func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ", "\r", " ").Replace(s)
}
