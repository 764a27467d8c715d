package notify

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
)

// SlackMessage is an incoming-webhook message: Block Kit blocks and the
// plain text Slack shows where blocks cannot be (notifications, old
// clients).
type SlackMessage struct {
	Text   string       `json:"text"`
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is a header, section or context block.
type SlackBlock struct {
	Type     string      `json:"type"`
	Text     *SlackText  `json:"text,omitempty"`
	Fields   []SlackText `json:"fields,omitempty"`
	Elements []SlackText `json:"elements,omitempty"`
}

// SlackText is a plain_text or mrkdwn text object.
type SlackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Block Kit limits, in characters.
const (
	slackHeaderMax  = 150
	slackFieldMax   = 2000
	slackSectionMax = 3000
)

// headline is each event's title; a word always says what happened, the
// emoji only decorates it.
var headline = map[string]string{
	canary.EventStarted:          "🚀 %s: started %s",
	canary.EventAdvanced:         "⏩ %s: advanced %s",
	canary.EventAwaitingApproval: "✋ %s: waiting for approval of %s",
	canary.EventHeld:             "⏸️ %s: held %s",
	canary.EventPromoted:         "✅ %s: promoted %s",
	canary.EventReverted:         "⛔ %s: reverted %s",
	canary.EventPlanInvalid:      "⚠️ %s: plan invalid %s",
}

// NewSlackMessage renders e in Block Kit: a header, a section with the
// plan, event, step and weight, and artifacts, the reason, the deciding
// gate's numbers (observed value against its bounds, and its verdict),
// and a context line with the commit, linked when the remote is on
// GitHub.
func NewSlackMessage(e Event) SlackMessage {
	plan := e.Plan
	if plan == "" {
		plan = e.Path
	}
	what := versionOf(e.Candidate)
	if e.Type == canary.EventPlanInvalid {
		what = "(" + e.Path + ")"
	}
	title := strings.TrimSpace(fmt.Sprintf(headline[e.Type], plan, what))
	blocks := []SlackBlock{{Type: "header", Text: &SlackText{Type: "plain_text", Text: clip(title, slackHeaderMax)}}}
	fields := []SlackText{
		mrkdwn("*Plan*\n" + esc(plan)),
		mrkdwn("*Event*\n" + esc(e.Type)),
	}
	if e.Type != canary.EventPlanInvalid {
		fields = append(fields, mrkdwn(fmt.Sprintf("*Step / weight*\n%d / %d%%", e.Step, e.Weight)))
	}
	if e.Candidate.URI != "" {
		fields = append(fields, mrkdwn("*Candidate*\n"+artifactText(e.Candidate)))
	}
	if e.Stable.URI != "" {
		fields = append(fields, mrkdwn("*Stable*\n"+artifactText(e.Stable)))
	}
	blocks = append(blocks, SlackBlock{Type: "section", Fields: fields})
	if e.Reason != "" {
		blocks = append(blocks, section("*Reason*\n"+esc(e.Reason)))
	}
	if g, ok := e.Gate(); ok {
		blocks = append(blocks, gateBlock(g))
	}
	if len(e.Errors) > 0 {
		blocks = append(blocks, section("*Errors*\n```"+esc(strings.Join(e.Errors, "\n"))+"```"))
	}
	blocks = append(blocks, SlackBlock{Type: "context", Elements: []SlackText{mrkdwn(commitText(e))}})
	return SlackMessage{Text: fallbackText(title, e), Blocks: blocks}
}

// gateBlock shows the deciding gate: its verdict, the value observed
// against the bounds it is held to, and its measurements.
func gateBlock(g canary.GateResult) SlackBlock {
	fields := []SlackText{
		mrkdwn(fmt.Sprintf("*Gate*\n`%s`: %s", esc(g.Gate), esc(string(g.Verdict)))),
		mrkdwn("*Observed*\n" + or(esc(g.Value), "—")),
		mrkdwn("*Bounds*\n" + or(esc(g.Condition), "—")),
		mrkdwn(fmt.Sprintf("*Measurements*\n%d failed, %d successful, %d inconclusive, %d errors",
			g.Failed, g.Successful, g.Inconclusive, g.Errors)),
	}
	if g.Window != "" {
		fields = append(fields, mrkdwn("*Window*\n"+esc(g.Window)))
	}
	b := SlackBlock{Type: "section", Fields: fields}
	if g.Reason != "" {
		b.Text = &SlackText{Type: "mrkdwn", Text: clip("*Deciding gate*: "+esc(g.Reason), slackSectionMax)}
	}
	return b
}

func commitText(e Event) string {
	short := e.Commit
	if len(short) > 12 {
		short = short[:12]
	}
	c := "Commit `" + esc(short) + "`"
	if e.CommitURL != "" {
		c = "Commit <" + e.CommitURL + "|" + esc(short) + ">"
	}
	if e.Repository != "" {
		c += " in " + esc(e.Repository)
	}
	return c + " · " + esc(e.ID)
}

func fallbackText(title string, e Event) string {
	t := title
	if e.Type != canary.EventPlanInvalid {
		t += fmt.Sprintf(" at step %d (weight %d%%)", e.Step, e.Weight)
	}
	if e.Reason != "" {
		t += ": " + e.Reason
	}
	if g, ok := e.Gate(); ok {
		t += fmt.Sprintf(" [gate %s %s: %s vs %s]", g.Gate, g.Verdict, or(g.Value, "—"), or(g.Condition, "—"))
	}
	return clip(esc(t), slackSectionMax)
}

func artifactText(a canary.Artifact) string {
	d := ShortDigest(a)
	if a.Version != "" && a.Version != d {
		return "`" + esc(a.Version) + "` " + esc(d)
	}
	return "`" + esc(d) + "`"
}

func versionOf(a canary.Artifact) string {
	if a.Version != "" {
		return a.Version
	}
	return ShortDigest(a)
}

func mrkdwn(s string) SlackText { return SlackText{Type: "mrkdwn", Text: clip(s, slackFieldMax)} }

func section(s string) SlackBlock {
	return SlackBlock{Type: "section", Text: &SlackText{Type: "mrkdwn", Text: clip(s, slackSectionMax)}}
}

// esc escapes the three characters Slack's mrkdwn reserves.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// clip cuts s to at most n characters, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// slackSender posts to a Slack incoming webhook, whose URL is the secret.
type slackSender struct {
	url    string
	client *http.Client
}

func (s *slackSender) Send(ctx context.Context, e Event) error {
	body, err := encode(NewSlackMessage(e))
	if err != nil {
		return fmt.Errorf("encode Slack message: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	return post(s.client, req)
}
