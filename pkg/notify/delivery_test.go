package notify

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// A receiver gets every event exactly once and in order, through a
// receiver that is down (503) and one that refuses connections, each
// getting its backlog when it comes back, while the other channel goes
// on; a restarted notifier sends nothing again.
func TestDeliveryFromGitHistory(t *testing.T) {
	w := newWorld(t)
	n := w.notifier(w.repo)
	w.firstRunStartsAtHead(n)
	w.wholeRollout(n)
	backlog := w.webhookDown(n)
	reverted, head := w.webhookBackSlackRefusing(n, backlog)

	// Slack comes back: its backlog arrives, in order.
	t.Setenv("CANARYBOT_NOTIFY_TEST_SLACK_WEBHOOK", w.slackSrv.URL+"/services/"+slackToken)
	if err := w.pass(n, w.repo); err != nil {
		t.Fatal(err)
	}
	w.wantSlack = append(w.wantSlack, reverted, head+"/planInvalid/.canarybot/plans/broken.yaml")
	w.check("when Slack is back")
	if w.cursor("hooks") != head || w.cursor("team-slack") != head {
		t.Errorf("cursors %s %s, want the head %s", w.cursor("hooks"), w.cursor("team-slack"), head)
	}
	w.checkRevertEvidence(reverted)

	// A restart: a new clone and notifier over the same remote send nothing.
	clone, err := gitops.Open(context.Background(), gitops.Options{URL: w.remote.bare, Dir: filepath.Join(t.TempDir(), "restarted")})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.pass(w.notifier(clone), clone); err != nil {
		t.Fatal(err)
	}
	w.check("after a restart")

	for _, leak := range []string{hookSecret, slackToken, "slackSecretToken"} {
		if strings.Contains(w.logs.String(), leak) {
			t.Errorf("the log shows a secret (%q):\n%s", leak, w.logs)
		}
	}
	if w.metrics.sent["hooks/reverted"] != 1 || w.metrics.sent["team-slack/started"] != 2 || w.metrics.sent["team-slack/advanced"] != 0 {
		t.Errorf("sent counts %v", w.metrics.sent)
	}
}

// firstRunStartsAtHead: with no cursors, they start at the head, and
// nothing older goes.
func (w *world) firstRunStartsAtHead(n *Notifier) {
	t := w.t
	seed := w.remote.git(w.remote.bare, "rev-parse", "main")
	if err := w.pass(n, w.repo); err != nil {
		t.Fatal(err)
	}
	if w.cursor("hooks") != seed || w.cursor("team-slack") != seed || len(w.hooks.got())+len(w.slack.got()) != 0 {
		t.Fatalf("first run: cursors %s %s, deliveries %v %v", w.cursor("hooks"), w.cursor("team-slack"), w.hooks.got(), w.slack.got())
	}
	if !strings.Contains(w.logs.String(), "channel has no cursor yet") {
		t.Errorf("the first run does not say where it starts:\n%s", w.logs)
	}
}

// wholeRollout rolls 2.0.0 out, with a person's commit and a quiet
// plan's start in between; the webhook refuses one event once, the
// second of its commit.
func (w *world) wholeRollout(n *Notifier) {
	t := w.t
	c := w.qwen.do(canary.Decision{Action: canary.ActStart, Step: 0, Weight: 10, Candidate: v2, Reason: "new artifact 2.0.0"})
	w.want(c, "started", "started")
	w.remote.humanCommit("docs", map[string]string{"README.md": "hello\n"})
	w.quiet.do(canary.Decision{Action: canary.ActStart, Step: 0, Weight: 100, Candidate: v2, Reason: "new"})
	beforeApproval := w.qwen.do(canary.Decision{Action: canary.ActAdvance, Step: 1, Weight: 10, Reason: "weight 10% synced"})
	w.want(beforeApproval, "advanced", "")
	c = w.qwen.do(canary.Decision{Action: canary.ActAdvance, Step: 2, Weight: 10, Reason: "gates passed",
		Gates: []canary.GateResult{{Gate: "latency", Verdict: canary.VerdictSuccessful, Value: "0.91", Condition: "result < 1.2"}}})
	w.want(c, "advanced", "")
	w.want(c, "awaitingApproval", "awaitingApproval")
	w.hooks.mu.Lock()
	w.hooks.failOnce = c + "/awaitingApproval"
	w.hooks.mu.Unlock()
	c = w.qwen.do(canary.Decision{Action: canary.ActAdvance, Step: 3, Weight: 50, Reason: "approved by alice"})
	w.want(c, "advanced", "")
	c = w.qwen.do(canary.Decision{Action: canary.ActPromote, Step: 4, Weight: 100, Reason: "weight 50% synced; all steps done"})
	w.want(c, "promoted", "promoted")
	if err := w.pass(n, w.repo); err == nil || !strings.Contains(err.Error(), "HTTP 502") {
		t.Fatalf("pass with a flaky webhook: %v", err)
	}
	// The cursor stops before the commit whose events did not all go;
	// the next pass repeats none of them.
	if w.cursor("hooks") != beforeApproval || w.cursor("team-slack") != c {
		t.Errorf("cursors after a partial pass: hooks %s, want %s; slack %s, want %s", w.cursor("hooks"), beforeApproval, w.cursor("team-slack"), c)
	}
	for _, when := range []string{"after the rollout", "after a pass with nothing new"} {
		if err := w.pass(n, w.repo); err != nil {
			t.Fatal(err)
		}
		w.check(when)
	}
}

// webhookDown: the webhook answers 503 while 3.0.0 starts and is held.
// Slack goes on; the webhook's cursor stays where its events stop. It
// returns the webhook's backlog.
func (w *world) webhookDown(n *Notifier) []string {
	t := w.t
	w.hooks.down.Store(true)
	hooksCursor := w.cursor("hooks")
	c := w.qwen.do(canary.Decision{Action: canary.ActStart, Step: 0, Weight: 10, Candidate: v3, Reason: "new artifact 3.0.0"})
	backlog := ids(c, "started")
	w.wantSlack = append(w.wantSlack, ids(c, "started")...)
	c = w.qwen.do(canary.Decision{Action: canary.ActAdvance, Step: 1, Weight: 10, Reason: "weight 10% synced"})
	backlog = append(backlog, ids(c, "advanced")...)
	c = w.qwen.do(canary.Decision{Action: canary.ActHold, Step: 1, Weight: 10, Reason: "gate latency inconclusive",
		Gates: []canary.GateResult{{Gate: "latency", Verdict: canary.VerdictInconclusive, Value: "1.19"}}})
	backlog = append(backlog, ids(c, "held")...)
	for range 2 {
		err := w.pass(n, w.repo)
		if err == nil || !strings.Contains(err.Error(), "channel hooks") || !strings.Contains(err.Error(), "HTTP 503") {
			t.Fatalf("pass with the webhook down: %v", err)
		}
	}
	w.check("with the webhook down")
	if w.cursor("hooks") != hooksCursor || w.metrics.failed("hooks") != 3 { // one flaky, two down
		t.Errorf("webhook down: cursor %s (was %s), failures %d", w.cursor("hooks"), hooksCursor, w.metrics.failed("hooks"))
	}
	return backlog
}

// webhookBackSlackRefusing: the webhook comes back as Slack starts
// refusing connections; 3.0.0 is reverted by its gate and a person
// breaks a plan file. The webhook gets its backlog. It returns the
// revert's event id and the head.
func (w *world) webhookBackSlackRefusing(n *Notifier, backlog []string) (string, string) {
	t := w.t
	w.hooks.down.Store(false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CANARYBOT_NOTIFY_TEST_SLACK_WEBHOOK", "http://"+ln.Addr().String()+"/services/"+slackToken)
	ln.Close()
	latency := canary.GateResult{Gate: "latency", Verdict: canary.VerdictFailed, Value: "1.4588", Condition: "result < 1.2", Failed: 2}
	c := w.qwen.do(canary.Decision{Action: canary.ActRevert, Gate: "latency", Gates: []canary.GateResult{latency},
		Reason: "gate latency failed: 2 of 2 measurements failed (limit 1): result 1.4588 did not meet successCondition: result < 1.2"})
	head := w.remote.humanCommit("break a plan", map[string]string{".canarybot/plans/broken.yaml": strings.Replace(
		strings.ReplaceAll(deliveryPlan, "qwen", "broken"), "setWeight: 10", "setWeight: ten", 1)})
	if err := w.pass(n, w.repo); err == nil || !strings.Contains(err.Error(), "channel team-slack") {
		t.Fatalf("pass with Slack refusing: %v", err)
	}
	w.wantHooks = append(append(w.wantHooks, backlog...), c+"/reverted", head+"/planInvalid/.canarybot/plans/broken.yaml")
	w.check("when the webhook is back")
	return c + "/reverted", head
}

// checkRevertEvidence: the revert carries the deciding gate's numbers,
// on both channels.
func (w *world) checkRevertEvidence(reverted string) {
	t := w.t
	doc := w.hooks.bodies[reverted]
	gates, _ := doc["gates"].([]any)
	if doc["decidingGate"] != "latency" || len(gates) != 1 || gates[0].(map[string]any)["value"] != "1.4588" ||
		doc["candidate"].(map[string]any)["version"] != "3.0.0" || doc["event"] != "reverted" {
		t.Errorf("webhook revert %v", doc)
	}
	all := checkBlockKit(t, w.slack.bodies[reverted])
	if !strings.Contains(all, "*Observed*\n1.4588") || !strings.Contains(all, "*Bounds*\nresult &lt; 1.2") {
		t.Errorf("slack revert:\n%s", all)
	}
}

// A cursor on the remote is a compare-and-swap: a stale old value is
// refused, a repeat of the same move is not an error. The same holds for
// the gitops store and the git CLI's.
func TestRefCursorsCompareAndSwap(t *testing.T) {
	b := newBareRepo(t)
	first := b.humanCommit("one", map[string]string{"a": "1"})
	second := b.humanCommit("two", map[string]string{"a": "2"})
	repo, err := gitops.Open(context.Background(), gitops.Options{URL: b.bare, Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	for name, refs := range map[string]RefStore{"gitops": repo, "git": cliRefs{b}} {
		c := RefCursors{Refs: refs}
		ctx := context.Background()
		if sha, err := c.Cursor(ctx, name); sha != "" || err != nil {
			t.Fatalf("%s: missing cursor: %q, %v", name, sha, err)
		}
		if err := c.SetCursor(ctx, name, "", first); err != nil {
			t.Fatal(err)
		}
		if err := c.SetCursor(ctx, name, "", second); !errors.Is(err, gitops.ErrNonFastForward) {
			t.Errorf("%s: create over an existing cursor: %v", name, err)
		}
		if err := c.SetCursor(ctx, name, first, second); err != nil {
			t.Fatal(err)
		}
		if err := c.SetCursor(ctx, name, first, second); err != nil {
			t.Errorf("%s: the same move again: %v", name, err)
		}
		if sha, _ := c.Cursor(ctx, name); sha != second {
			t.Errorf("%s: cursor %s, want %s", name, sha, second)
		}
	}
	if got := b.git(b.bare, "for-each-ref", "--format=%(refname)", CursorRefPrefix); got != "refs/canarybot/notified/git\nrefs/canarybot/notified/gitops" {
		t.Errorf("refs %q", got)
	}
}
