package notify

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/canary/canarytest"
)

// waitFor waits until cond holds, failing t after a generous deadline:
// Run works in its own goroutine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Run retries a failing channel after 1 s, then 2 s, on the injected
// clock, while the other channel is not held up; a Poke sends the next
// commit's events at once.
func TestRunBacksOffPerChannel(t *testing.T) {
	w := newWorld(t)
	clock := canarytest.NewManualClock(t0)
	n := w.notifier(w.repo)
	n.cfg.Clock = clock
	if err := w.pass(n, w.repo); err != nil { // cursors at the head
		t.Fatal(err)
	}
	w.hooks.down.Store(true)
	started := w.qwen.do(canary.Decision{Action: canary.ActStart, Step: 0, Weight: 10, Candidate: v2, Reason: "new"}) + "/started"

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- n.Run(ctx) }()
	n.Poke() // as the fleet does after its first fetch
	waitFor(t, "Slack's delivery and the webhook's first retry timer", func() bool {
		return len(w.slack.got()) == 1 && w.metrics.failed("hooks") == 1 && clock.Waiting(time.Second) > 0
	})
	clock.Advance(time.Second)
	waitFor(t, "the second failure and its 2 s timer", func() bool {
		return w.metrics.failed("hooks") == 2 && clock.Waiting(2*time.Second) > 0
	})
	if clock.Waiting(time.Second) != 0 {
		t.Error("after two failures the retry is due within 1 s: the backoff did not double")
	}
	w.hooks.down.Store(false)
	clock.Advance(2 * time.Second)
	waitFor(t, "the webhook's delivery", func() bool { return len(w.hooks.got()) == 1 })

	advanced := w.qwen.do(canary.Decision{Action: canary.ActAdvance, Step: 1, Weight: 10, Reason: "synced"}) + "/advanced"
	n.Poke()
	waitFor(t, "the poked delivery", func() bool { return len(w.hooks.got()) == 2 })
	cancel()
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
	if got := w.hooks.got(); !reflect.DeepEqual(got, []string{started, advanced}) {
		t.Errorf("the webhook got %v", got)
	}
	if got := w.slack.got(); !reflect.DeepEqual(got, []string{started}) {
		t.Errorf("Slack got %v", got)
	}
	if w.metrics.failed("hooks") != 2 || w.metrics.failed("team-slack") != 0 {
		t.Errorf("failures %v", w.metrics.failures)
	}
}

// A cursor farther behind than MaxWalk, or not in the branch's history at
// all, moves to the head with a warning naming the commits skipped.
func TestCursorTooFarBehindSkipsToHead(t *testing.T) {
	w := newWorld(t)
	n := w.notifier(w.repo)
	n.cfg.MaxWalk = 2
	if err := w.pass(n, w.repo); err != nil {
		t.Fatal(err)
	}
	w.qwen.do(canary.Decision{Action: canary.ActStart, Step: 0, Weight: 10, Candidate: v2, Reason: "new"})
	w.qwen.do(canary.Decision{Action: canary.ActAdvance, Step: 1, Weight: 10, Reason: "synced"})
	head := w.qwen.do(canary.Decision{Action: canary.ActHold, Step: 1, Weight: 10, Reason: "held"})
	if err := w.pass(n, w.repo); err != nil {
		t.Fatal(err)
	}
	if len(w.hooks.got()) != 0 || w.cursor("hooks") != head || !strings.Contains(w.logs.String(), "skipped_commits=3") {
		t.Errorf("deliveries %v, cursor %s (head %s), log:\n%s", w.hooks.got(), w.cursor("hooks"), head, w.logs)
	}

	// A cursor on a commit the branch never had (history rewritten).
	tree := w.remote.git(w.remote.bare, "rev-parse", "main^{tree}")
	orphan := w.remote.git(w.remote.bare, "commit-tree", tree, "-m", "elsewhere")
	w.remote.git(w.remote.bare, "update-ref", CursorRef("hooks"), orphan)
	head = w.qwen.do(canary.Decision{Action: canary.ActAdvance, Step: 2, Weight: 10, Reason: "gates passed"})
	n = w.notifier(w.repo) // a fresh process: it has not seen the cursor
	if err := w.pass(n, w.repo); err != nil {
		t.Fatal(err)
	}
	if len(w.hooks.got()) != 0 || w.cursor("hooks") != head || !strings.Contains(w.logs.String(), "not in the first-parent history") {
		t.Errorf("deliveries %v, cursor %s (head %s), log:\n%s", w.hooks.got(), w.cursor("hooks"), head, w.logs)
	}
}

// Without a cursor store nothing is sent, and the bot says so once.
func TestNoCursorStoreSendsNothing(t *testing.T) {
	w := newWorld(t)
	n := w.notifier(w.repo)
	n.cfg.Cursors = nil
	w.qwen.do(canary.Decision{Action: canary.ActStart, Step: 0, Weight: 10, Candidate: v2, Reason: "new"})
	if n.Active(context.Background()) {
		t.Error("active without a cursor store")
	}
	if err := w.pass(n, w.repo); err != nil {
		t.Fatal(err)
	}
	if len(w.hooks.got())+len(w.slack.got()) != 0 || strings.Count(w.logs.String(), "no cursor store") != 1 {
		t.Errorf("deliveries %v %v, log:\n%s", w.hooks.got(), w.slack.got(), w.logs)
	}
	if !w.notifier(w.repo).Active(context.Background()) {
		t.Error("not active with channels and a cursor store")
	}
}

// Init starts missing cursors at the head and leaves existing ones.
func TestInitStartsMissingCursorsOnly(t *testing.T) {
	w := newWorld(t)
	n := w.notifier(w.repo)
	seed := w.remote.git(w.remote.bare, "rev-parse", "main")
	if err := n.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := w.qwen.do(canary.Decision{Action: canary.ActStart, Step: 0, Weight: 10, Candidate: v2, Reason: "new"})
	if err := n.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.cursor("hooks") != seed || w.cursor("team-slack") != seed {
		t.Fatalf("cursors %s %s, want the seed %s", w.cursor("hooks"), w.cursor("team-slack"), seed)
	}
	if err := w.pass(n, w.repo); err != nil {
		t.Fatal(err)
	}
	if got := w.hooks.got(); !reflect.DeepEqual(got, []string{c + "/started"}) {
		t.Errorf("the webhook got %v", got)
	}
}
