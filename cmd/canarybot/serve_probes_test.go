package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canarybot/canarybot/internal/fakegithub"
	"github.com/canarybot/canarybot/pkg/argocd/argocdtest"
)

// A `serve --leader-elect` standby answers GET /healthz and /metrics on
// --metrics-listen while it waits for the Lease (here, forever: the
// kube-apiserver it names is not there), so that a Deployment's liveness
// probe keeps it, and does not listen on --listen, where the leader
// alone takes GitHub's webhooks.
func TestServeStandbyAnswersProbes(t *testing.T) {
	gh := fakegithub.New(t, fakegithub.Options{WebhookSecret: "s", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	gh.AddInstallation("acme")
	argo := &argocdtest.Server{Head: func(string) (string, error) { return "", fmt.Errorf("no application") }}
	if err := argo.Start(); err != nil {
		t.Fatal(err)
	}
	defer argo.Stop()
	dir := t.TempDir()
	key, kubeconfig := filepath.Join(dir, "app.pem"), filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(key, gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: gone, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: gone, context: {cluster: gone, user: u}}]
current-context: gone
`), 0o600); err != nil {
		t.Fatal(err)
	}
	webhooks, probes := freeAddr(t), freeAddr(t)
	cmd := exec.Command(binPath, "serve", "--github-api-url", gh.URL()+"/", "--github-app-id", fmt.Sprint(gh.AppID()),
		"--github-private-key-file", key, "--dir", filepath.Join(dir, "clones"), "--listen", webhooks, "--metrics-listen", probes,
		"--prometheus", "http://127.0.0.1:1", "--argocd-server", argo.Addr(), "--argocd-plaintext",
		"--leader-elect", "--leader-elect-kubeconfig", kubeconfig, "--log-level", "info", "--log-format", "json")
	cmd.Env = append(os.Environ(), "GITHUB_WEBHOOK_SECRET=s")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("serve's log:\n%s", tail(stderr.String(), 40))
		}
	}()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + probes + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitUntil(t, "GET /healthz on --metrics-listen", 30*time.Second, func() bool {
		code, body := get("/healthz")
		return code == http.StatusOK && body == "ok\n"
	})
	waitUntil(t, "the standby waiting for the Lease", 30*time.Second, func() bool {
		return strings.Contains(stderr.String(), `"msg":"waiting for the lease"`)
	})
	if code, body := get("/metrics"); code != http.StatusOK {
		t.Errorf("GET /metrics on --metrics-listen: %d %s", code, body)
	}
	if c, err := net.DialTimeout("tcp", webhooks, time.Second); err == nil {
		_ = c.Close()
		t.Errorf("the standby listens on --listen %s: only the leader should", webhooks)
	}
}

// --metrics-listen cannot share --listen's address.
func TestServeMetricsListenNotListen(t *testing.T) {
	_, _, err := run(t, "serve", "--dir", t.TempDir(), "--prometheus", "http://127.0.0.1:1", "--argocd-server", "127.0.0.1:1",
		"--listen", "127.0.0.1:8080", "--metrics-listen", "127.0.0.1:8080")
	if err == nil || !strings.Contains(err.Error(), "--metrics-listen 127.0.0.1:8080: --listen serves the webhooks there") {
		t.Fatalf("err = %v", err)
	}
}
