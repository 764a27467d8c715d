package fakegithub

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/canarybot/canarybot/pkg/github/webhook"
)

const secret = "hook-secret"

// botReceiver is canarybot's own webhook handler, recording the events it
// queued and the headers of every delivery.
type botReceiver struct {
	mu      sync.Mutex
	events  []webhook.Event
	headers []http.Header
	srv     *httptest.Server
}

func newBotReceiver(t *testing.T, key string) *botReceiver {
	t.Helper()
	b := &botReceiver{}
	h := &webhook.Handler{Secret: []byte(key), Seen: webhook.NewDeduper(100, time.Hour, time.Now),
		Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Enqueue: func(ev webhook.Event) bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.events = append(b.events, ev)
			return true
		}}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.headers = append(b.headers, r.Header.Clone())
		b.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *botReceiver) byKind() map[string][]webhook.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := map[string][]webhook.Event{}
	for _, ev := range b.events {
		m[ev.Kind] = append(m[ev.Kind], ev)
	}
	return m
}

func wait(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitDeliveries(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestWebhooksReachTheBotsReceiver(t *testing.T) {
	ctx := context.Background()
	bot := newBotReceiver(t, secret)
	f := newFixture(t, Options{WebhookURL: bot.srv.URL, WebhookSecret: secret, InstallationID: 7, HookID: 99})
	pr := f.openPR(t, "canarybot/qwen", map[string]string{"x": "1\n"})
	n := pr.GetNumber()
	if _, err := f.s.Comment(owner, name, n, "alice", "/canary pause"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Review(owner, name, n, "alice", "APPROVE", "ok"); err != nil {
		t.Fatal(err)
	}
	run, _, err := f.app.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{Name: "canary/gates", HeadSHA: pr.GetHead().GetSHA()})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.RerequestCheckRun(owner, name, run.GetID(), "bob"); err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + strings.Repeat("ab", 32)
	if err := f.s.PublishPackage(owner, "qwen", "2.0.0", digest); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.app.PullRequests.Merge(ctx, owner, name, n, "", &github.PullRequestOptions{MergeMethod: "squash"}); err != nil {
		t.Fatal(err)
	}
	wait(t, f.s)

	ds := f.s.Deliveries()
	var kinds []string
	var pkg Delivery
	for _, d := range ds {
		if d.Event == "registry_package" {
			pkg = d
		}
		if d.Event != "push" { // the branch's creation and the merge push too; see push_test.go
			kinds = append(kinds, d.Event+"."+d.Action)
		}
		if !d.Delivered || d.Err != "" || (d.StatusCode != 202 && d.StatusCode != 200) {
			t.Errorf("delivery %s %s: delivered %v status %d err %q", d.Event, d.Action, d.Delivered, d.StatusCode, d.Err)
		}
	}
	want := "pull_request.opened issue_comment.created pull_request_review.submitted check_run.created check_run.rerequested " +
		"registry_package.published pull_request.closed"
	if strings.Join(kinds, " ") != want {
		t.Errorf("deliveries %v, want %s", kinds, want)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, h := range bot.headers {
		if !uuid.MatchString(h.Get("X-GitHub-Delivery")) || h.Get("X-GitHub-Hook-ID") != "99" ||
			!strings.HasPrefix(h.Get("User-Agent"), "GitHub-Hookshot/") || h.Get("Content-Type") != "application/json" ||
			!strings.HasPrefix(h.Get("X-Hub-Signature-256"), "sha256=") {
			t.Errorf("delivery headers %v", h)
		}
	}

	checkParsed(t, f, bot, n, run.GetID(), digest)

	// A redelivery keeps its GUID, so the bot drops it as a duplicate.
	if err := f.s.Redeliver(pkg.ID); err != nil {
		t.Fatal(err)
	}
	wait(t, f.s)
	last := f.s.Deliveries()[len(ds)]
	if !last.Redelivery || last.ID != pkg.ID || string(last.Body) != string(pkg.Body) || last.StatusCode != http.StatusOK {
		t.Errorf("redelivery %+v", last)
	}
	if n := len(bot.byKind()[webhook.KindPackage]); n != 1 {
		t.Errorf("the bot queued the package event %d times", n)
	}
	if err := f.s.Redeliver("nope"); err == nil {
		t.Error("Redeliver of an unknown delivery succeeded")
	}
}

// checkParsed checks the events as canarybot's parser read them.
func checkParsed(t *testing.T, f *fixture, bot *botReceiver, n int, runID int64, digest string) {
	t.Helper()
	got := bot.byKind()
	check := func(kind string, ok func(webhook.Event) bool) {
		t.Helper()
		evs := got[kind]
		if len(evs) != 1 || !ok(evs[0]) || evs[0].Installation != 7 || evs[0].Owner != owner || evs[0].Repo != name {
			t.Errorf("%s events as canarybot parsed them: %+v", kind, evs)
		}
	}
	check(webhook.KindComment, func(e webhook.Event) bool {
		return e.Comment.IsPR && e.Comment.Issue == n && e.Comment.Author == "alice" && e.Comment.Body == "/canary pause"
	})
	check(webhook.KindReview, func(e webhook.Event) bool {
		return e.PullRequest.ReviewState == "approved" && e.PullRequest.Branch == "canarybot/qwen" && e.Sender == "alice"
	})
	check(webhook.KindCheckRun, func(e webhook.Event) bool {
		return e.CheckRun.ID == runID && e.CheckRun.Name == "canary/gates" && e.Sender == "bob"
	})
	check(webhook.KindPackage, func(e webhook.Event) bool {
		return e.Package.Digest == digest && e.Package.Tag == "2.0.0" && e.Package.Repository == "ghcr.io/acme/qwen"
	})
	check(webhook.KindPullRequest, func(e webhook.Event) bool {
		return e.PullRequest.Merged && e.PullRequest.Number == n && e.Sender == f.s.BotLogin()
	})

}

func TestWebhookFailuresAreRecorded(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer failing.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	tests := []struct {
		name   string
		url    string
		secret string
		status int
		err    string
	}{
		{"no URL", "", secret, 0, "no webhook URL configured"},
		{"receiver fails", failing.URL, secret, 500, ""},
		{"wrong secret", newBotReceiver(t, "other").srv.URL, secret, 401, ""},
		{"no secret", newBotReceiver(t, secret).srv.URL, "", 401, ""},
		{"unreachable", gone.URL, secret, 0, "connect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{WebhookURL: tc.url, WebhookSecret: tc.secret})
			if err := f.s.PublishPackage(owner, "qwen", "1", "sha256:"+strings.Repeat("0", 64)); err != nil {
				t.Fatal(err)
			}
			wait(t, f.s)
			ds := f.s.Deliveries()
			if len(ds) != 1 || !ds[0].Delivered || ds[0].StatusCode != tc.status || !strings.Contains(ds[0].Err, tc.err) {
				t.Fatalf("deliveries %+v, want status %d err %q", ds, tc.status, tc.err)
			}
			// Pointed at a working receiver, a redelivery gets through.
			f.s.SetWebhookURL(newBotReceiver(t, tc.secret).srv.URL)
			if err := f.s.Redeliver(ds[0].ID); err != nil {
				t.Fatal(err)
			}
			wait(t, f.s)
			if d := f.s.Deliveries()[1]; tc.secret != "" && d.StatusCode != http.StatusAccepted {
				t.Errorf("redelivery: %+v", d)
			}
		})
	}
}

func TestSlowReceiverDoesNotBlockTheAPI(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	defer slow.Close()
	f := newFixture(t, Options{WebhookURL: slow.URL, WebhookSecret: secret})
	pr := f.openPR(t, "topic", map[string]string{"x": "1\n"})
	<-arrived // the first event (the branch's push) is stuck in the receiver

	ctx := context.Background()
	if _, _, err := f.app.Issues.CreateComment(ctx, owner, name, pr.GetNumber(), &github.IssueComment{Body: github.String("hi")}); err != nil {
		t.Fatalf("API call while a delivery hangs: %v", err)
	}
	if _, _, err := f.app.PullRequests.Get(ctx, owner, name, pr.GetNumber()); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.s.WaitDeliveries(short); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitDeliveries with a hung receiver: %v, want context.Canceled", err)
	}
	close(release)
	wait(t, f.s)
	var ds []Delivery
	for _, d := range f.s.Deliveries() {
		if d.Event != "push" {
			ds = append(ds, d)
		}
	}
	if len(ds) != 2 || ds[0].StatusCode != 200 || ds[1].Event != "issue_comment" {
		t.Errorf("deliveries %+v", ds)
	}
}
