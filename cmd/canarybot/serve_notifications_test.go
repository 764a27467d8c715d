package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/canarybot/canarybot/internal/fakegithub"
	"github.com/canarybot/canarybot/pkg/argocd/argocdtest"
	"github.com/canarybot/canarybot/pkg/canary"
	notifications "github.com/canarybot/canarybot/pkg/notify"
)

// hookReceiver records the events of signed notifications, in order.
type hookReceiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !notifications.Verify([]byte(h.secret), body, r.Header.Get(notifications.HeaderSignature)) {
		h.t.Errorf("bad signature on %s", r.Header.Get(notifications.HeaderDelivery))
	}
	var p notifications.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		h.t.Error(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, p.Event+" "+p.Plan)
}

func (h *hookReceiver) events() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// `canarybot serve` as a GitHub App notifies from the transitions it
// merges: the receiver gets the rollout's events in order, once each,
// linked to GitHub, and the cursor is a ref on the repository.
func TestServeSendsNotifications(t *testing.T) {
	const secret = "serve-hook-secret-7"
	recv := &hookReceiver{t: t, secret: secret}
	hook := httptest.NewServer(recv)
	defer hook.Close()
	gh := fakegithub.New(t, fakegithub.Options{WebhookSecret: "org-secret", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "manifests"), os.DirFS("../../manifests")); err != nil {
		t.Fatal(err)
	}
	for p, content := range map[string]string{
		".canarybot/plans/fraud.yaml": approvalPlan("fraud", "{mode: kserve, kserve: {inferenceService: fraud-detector}}",
			"manifests/overlays/fraud-detector", "platform-fraud"),
		canary.ConfigPath: "apiVersion: canarybot.dev/v1alpha1\nkind: RepositoryConfig\nspec:\n  notifications:\n" +
			"  - name: hooks\n    webhook: {url: \"" + hook.URL + "\", secretFrom: {env: CANARYBOT_NOTIFY_SERVE_TEST_HOOK_SECRET}}\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gh.CreateRepo("acme", "platform", "main", dir)
	gh.AddInstallation("acme")
	gh.AddUser("ana", fakegithub.PermWrite)
	bare := gh.RepoPath("acme", "platform")
	argo := &argocdtest.Server{Head: func(string) (string, error) {
		out, err := exec.Command("git", "-C", bare, "rev-parse", "main").Output()
		return strings.TrimSpace(string(out)), err
	}}
	if err := argo.Start(); err != nil {
		t.Fatal(err)
	}
	defer argo.Stop()
	addr := freeAddr(t)
	gh.SetWebhookURL("http://" + addr + "/webhooks/github")
	key := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(key, gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "serve", "--github-api-url", gh.URL()+"/", "--github-app-id", fmt.Sprint(gh.AppID()),
		"--github-private-key-file", key, "--dir", t.TempDir(), "--listen", addr, "--poll", "2s", "--min-poll", "200ms",
		"--prometheus", "http://127.0.0.1:1", "--argocd-server", argo.Addr(), "--argocd-plaintext", "--log-level", "debug")
	cmd.Env = append(os.Environ(), "GITHUB_WEBHOOK_SECRET=org-secret", "CANARYBOT_NOTIFY_SERVE_TEST_HOOK_SECRET="+secret)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("serve's log:\n%s", tail(stderr.String(), 60))
		}
	}()

	waiting := []string{"started fraud", "advanced fraud", "awaitingApproval fraud"}
	waitUntil(t, "the events up to the approval, and its PR", 2*time.Minute, func() bool {
		return len(recv.events()) >= len(waiting) && approvalPR(gh, "acme", "platform", "fraud") != 0
	})
	approve(t, gh, "acme", "platform", "fraud", "ana")
	want := append(waiting, "advanced fraud", "promoted fraud")
	waitUntil(t, "the events up to the promotion", time.Minute, func() bool { return len(recv.events()) >= len(want) })
	time.Sleep(time.Second) // nothing more comes
	if got := recv.events(); !reflect.DeepEqual(got, want) {
		t.Errorf("the receiver got %v, want %v", got, want)
	}
	waitUntil(t, "the cursor at the head", 30*time.Second, func() bool {
		cursor, _ := exec.Command("git", "-C", bare, "rev-parse", notifications.CursorRef("hooks")).Output()
		head, _ := exec.Command("git", "-C", bare, "rev-parse", "main").Output()
		return len(head) > 0 && string(cursor) == string(head)
	})
	if strings.Contains(stderr.String(), secret) {
		t.Error("serve's log shows the webhook secret")
	}
}
