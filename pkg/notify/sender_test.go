package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/canary/canarytest"
)

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// countMetrics is a Metrics that counts.
type countMetrics struct {
	mu       sync.Mutex
	sent     map[string]int
	failures map[string]int
}

func newCountMetrics() *countMetrics {
	return &countMetrics{sent: map[string]int{}, failures: map[string]int{}}
}

func (m *countMetrics) Sent(ch, ev string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent[ch+"/"+ev]++
}

func (m *countMetrics) Failed(ch string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failures[ch]++
}

func (m *countMetrics) failed(ch string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failures[ch]
}

// senderNotifier is a Notifier for calling deliver directly, logging into
// the returned buffer.
func senderNotifier(t *testing.T) (*Notifier, *syncBuffer, *countMetrics) {
	t.Helper()
	logs := &syncBuffer{}
	m := newCountMetrics()
	n, err := New(Config{Repository: "acme/gitops", WebURL: "https://github.com/acme/gitops", Source: GitSource{},
		Clock: canarytest.NewManualClock(t0), Metrics: m,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return n, logs, m
}

// revertEvent is a decorated revert with its deciding gate.
func revertEvent(t *testing.T, n *Notifier) Event {
	t.Helper()
	st := state(canary.PhaseReverted, 1, 0, canary.Artifact{}, "gate latency failed: result 1.4588 did not meet successCondition: result < 1.2 <b>&",
		"revert", 0, canary.GateResult{Gate: "latency", Verdict: canary.VerdictFailed, Value: "1.4588",
			Condition: "result < 1.2", Failed: 2, Window: "step 12:00:00 → 12:02:00Z (2m0s)"})
	st.Status.Failed = []canary.Artifact{v2}
	sha := strings.Repeat("ab", 20)
	return n.decorate(Derive(Commit{SHA: sha, Time: t0, Trailers: trailers("qwen", "1", "revert", v2.URI)}, st, nil)[0])
}

func TestSlackMessageIsBlockKit(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg map[string]any
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&msg) != nil {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, msg)
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	const token = "T0000/B0000/SlackTokenXyz"
	t.Setenv("CANARYBOT_NOTIFY_TEST_SLACK_URL", srv.URL+"/services/"+token)
	n, logs, m := senderNotifier(t)
	ch := canary.NotificationChannel{Name: "team", Slack: &canary.SlackNotification{WebhookURLFrom: &canary.SecretSource{Env: "CANARYBOT_NOTIFY_TEST_SLACK_URL"}}}
	rev := revertEvent(t, n)
	invalid := n.decorate(DeriveInvalid(Commit{SHA: "h1", Time: t0}, nil, []canary.PlanProblem{{Path: ".canarybot/plans/x.yaml",
		Name: "x", Err: errorString("spec.overlay: is required")}})[0])
	for _, e := range []Event{rev, invalid} {
		if err := n.deliver(context.Background(), ch, e); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 {
		t.Fatalf("receiver got %d messages", len(got))
	}
	all := checkBlockKit(t, got[0])
	for _, want := range []string{"reverted 2.0.0", "*Plan*\nqwen", "1 / 0%", "sha256:222222222222", "`latency`: Failed",
		"*Observed*\n1.4588", "*Bounds*\nresult &lt; 1.2", "&lt;b&gt;&amp;", "<https://github.com/acme/gitops/commit/abababababab", "acme/gitops"} {
		if !strings.Contains(all, want) {
			t.Errorf("the revert message lacks %q:\n%s", want, all)
		}
	}
	if text, _ := got[0]["text"].(string); !strings.Contains(text, "reverted 2.0.0 at step 1") || !strings.Contains(text, "1.4588 vs result &lt; 1.2") {
		t.Errorf("fallback text %q", text)
	}
	if all := checkBlockKit(t, got[1]); !strings.Contains(all, "spec.overlay: is required") || !strings.Contains(all, "plan invalid") {
		t.Errorf("the planInvalid message:\n%s", all)
	}
	if m.sent["team/reverted"] != 1 || m.sent["team/planInvalid"] != 1 {
		t.Errorf("sent counts %v", m.sent)
	}
	if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), srv.URL) {
		t.Errorf("the log shows the webhook URL:\n%s", logs)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// checkBlockKit checks a message's Block Kit shape and returns all its
// texts, joined.
func checkBlockKit(t *testing.T, msg map[string]any) string {
	t.Helper()
	var all []string
	text := func(where string, v any, kinds ...string) {
		o, ok := v.(map[string]any)
		s, _ := o["text"].(string)
		if !ok || s == "" || !contains(kinds, o["type"]) {
			t.Errorf("%s: text object %v, want type %v with text", where, v, kinds)
		}
		all = append(all, s)
	}
	if s, _ := msg["text"].(string); s == "" {
		t.Error("no fallback text")
	}
	blocks, _ := msg["blocks"].([]any)
	types := map[string]int{}
	for i, b := range blocks {
		block, _ := b.(map[string]any)
		typ, _ := block["type"].(string)
		types[typ]++
		switch typ {
		case "header":
			text("header", block["text"], "plain_text")
			if s := all[len(all)-1]; len([]rune(s)) > 150 {
				t.Errorf("header over 150 characters: %q", s)
			}
		case "section":
			fields, _ := block["fields"].([]any)
			if block["text"] == nil && len(fields) == 0 || len(fields) > 10 {
				t.Errorf("section %d: %v", i, block)
			}
			if block["text"] != nil {
				text("section", block["text"], "mrkdwn", "plain_text")
			}
			for _, f := range fields {
				text("field", f, "mrkdwn", "plain_text")
			}
		case "context":
			elems, _ := block["elements"].([]any)
			if len(elems) == 0 {
				t.Errorf("context %d has no elements", i)
			}
			for _, e := range elems {
				text("context element", e, "mrkdwn", "plain_text")
			}
		default:
			t.Errorf("block %d has type %q", i, typ)
		}
	}
	if types["header"] != 1 || types["section"] < 1 || types["context"] != 1 || blocks[0].(map[string]any)["type"] != "header" {
		t.Errorf("blocks %v: want a header first, sections, a context", types)
	}
	return strings.Join(all, "\n")
}

func contains(kinds []string, v any) bool {
	for _, k := range kinds {
		if v == k {
			return true
		}
	}
	return false
}

func TestWebhookIsSigned(t *testing.T) {
	const secret = "whsec-0123456789abcdef"
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type delivery struct {
		header http.Header
		body   []byte
	}
	got := make(chan delivery, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), body}
	}))
	defer srv.Close()
	n, _, _ := senderNotifier(t)
	n.cfg.Secrets = EnvAndFiles{Dir: filepath.Dir(file)}
	ch := canary.NotificationChannel{Name: "hooks", Webhook: &canary.WebhookNotification{URL: srv.URL + "/hook",
		SecretFrom: &canary.SecretSource{File: file}}}
	e := revertEvent(t, n)
	if err := n.deliver(context.Background(), ch, e); err != nil {
		t.Fatal(err)
	}
	d := <-got
	if !Verify([]byte(secret), d.body, d.header.Get(HeaderSignature)) {
		t.Errorf("signature %q does not verify", d.header.Get(HeaderSignature))
	}
	if Verify([]byte("another secret"), d.body, d.header.Get(HeaderSignature)) {
		t.Error("the signature verifies with another secret")
	}
	if !strings.HasPrefix(d.header.Get(HeaderSignature), "sha256=") || d.header.Get(HeaderDelivery) != e.ID ||
		d.header.Get(HeaderEvent) != "reverted" || d.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", d.header)
	}
	var p map[string]any
	if err := json.Unmarshal(d.body, &p); err != nil {
		t.Fatal(err)
	}
	gates, _ := p["gates"].([]any)
	gate, _ := gates[0].(map[string]any)
	cand, _ := p["candidate"].(map[string]any)
	for k, want := range map[string]any{"apiVersion": "canarybot.dev/v1alpha1", "kind": "Notification", "id": e.ID,
		"event": "reverted", "plan": "qwen", "repository": "acme/gitops", "commit": e.Commit, "at": "2026-03-01T12:00:00Z",
		"step": 1.0, "weight": 0.0, "decidingGate": "latency",
		"commitURL": "https://github.com/acme/gitops/commit/" + e.Commit} {
		if p[k] != want {
			t.Errorf("payload %s = %v, want %v", k, p[k], want)
		}
	}
	if gate["name"] != "latency" || gate["value"] != "1.4588" || gate["condition"] != "result < 1.2" || gate["failed"] != 2.0 ||
		cand["version"] != "2.0.0" || cand["digest"] != "sha256:222222222222" {
		t.Errorf("gate %v, candidate %v", gate, cand)
	}
}

// A receiver that refuses, or is not there, is an error that names the
// channel and hides the URL and the secret, and is counted; so is a
// secret that cannot be read.
func TestDeliveryFailuresHideSecrets(t *testing.T) {
	const secret = "s3cr3t-signing-key"
	t.Setenv("CANARYBOT_NOTIFY_TEST_HOOK_SECRET", secret)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/services/T1/B1/RefusedSlackToken"
	ln.Close()
	t.Setenv("CANARYBOT_NOTIFY_TEST_REFUSED_URL", refused)
	n, logs, m := senderNotifier(t)
	e := revertEvent(t, n)
	for _, tc := range []struct {
		ch   canary.NotificationChannel
		want string
	}{
		{canary.NotificationChannel{Name: "hooks", Webhook: &canary.WebhookNotification{URL: down.URL,
			SecretFrom: &canary.SecretSource{Env: "CANARYBOT_NOTIFY_TEST_HOOK_SECRET"}}}, "HTTP 503: maintenance"},
		{canary.NotificationChannel{Name: "slack", Slack: &canary.SlackNotification{
			WebhookURLFrom: &canary.SecretSource{Env: "CANARYBOT_NOTIFY_TEST_REFUSED_URL"}}}, "connection refused"},
		{canary.NotificationChannel{Name: "unset", Slack: &canary.SlackNotification{
			WebhookURLFrom: &canary.SecretSource{Env: "CANARYBOT_NOTIFY_TEST_NOT_SET"}}}, "env CANARYBOT_NOTIFY_TEST_NOT_SET: the variable is not set"},
		{canary.NotificationChannel{Name: "notaurl", Webhook: &canary.WebhookNotification{
			URLFrom: &canary.SecretSource{Env: "CANARYBOT_NOTIFY_TEST_HOOK_SECRET"}, SecretFrom: &canary.SecretSource{Env: "CANARYBOT_NOTIFY_TEST_HOOK_SECRET"}}}, "names no host"},
	} {
		err := n.deliver(context.Background(), tc.ch, e)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "channel "+tc.ch.Name) {
			t.Errorf("%s: error %v, want %q", tc.ch.Name, err, tc.want)
			continue
		}
		n.cfg.Log.Warn("delivery failed", "err", err) // as Run logs it
		if m.failed(tc.ch.Name) != 1 {
			t.Errorf("%s: %d failures counted", tc.ch.Name, m.failed(tc.ch.Name))
		}
	}
	for _, leak := range []string{secret, "RefusedSlackToken", refused} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("the log shows %q:\n%s", leak, logs)
		}
	}
}

// A plan is untrusted input: it can only name secrets meant for
// notifications, never the bot's own credentials.
func TestSecretsOnlyFromTheNotificationNamespace(t *testing.T) {
	dir := t.TempDir()
	inside := filepath.Join(dir, "hook")
	outside := filepath.Join(t.TempDir(), "app-key.pem")
	for _, p := range []string{inside, outside} {
		if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("CANARYBOT_NOTIFY_HOOK", "fine")
	t.Setenv("GITHUB_APP_PRIVATE_KEY", "never")
	r := EnvAndFiles{Dir: dir}
	for _, c := range []struct {
		src  canary.SecretSource
		want string // the value, or the error's words
		ok   bool
	}{
		{canary.SecretSource{File: inside}, "s3cret", true},
		{canary.SecretSource{Env: "CANARYBOT_NOTIFY_HOOK"}, "fine", true},
		{canary.SecretSource{File: outside}, "only files under " + dir, false},
		{canary.SecretSource{File: dir + "/../" + filepath.Base(filepath.Dir(outside))}, "only files under", false},
		{canary.SecretSource{File: dir}, "only files under", false},
		{canary.SecretSource{Env: "GITHUB_APP_PRIVATE_KEY"}, "only variables named CANARYBOT_NOTIFY_", false},
	} {
		v, err := r.Read(c.src)
		switch {
		case c.ok && (err != nil || v != c.want):
			t.Errorf("%s: %q, %v; want %q", c.src, v, err, c.want)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "never")):
			t.Errorf("%s: %q, %v; want a refusal saying %q", c.src, v, err, c.want)
		}
	}
	if d := (EnvAndFiles{}).dir(); d != DefaultSecretsDir {
		t.Errorf("default dir %q", d)
	}
}
