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
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canarybot/canarybot/internal/fakegithub"
	"github.com/canarybot/canarybot/internal/promtooltest"
	"github.com/canarybot/canarybot/pkg/argocd/argocdtest"
)

// qwenGateway is the traffic of manifests/overlays/qwen.
const qwenGateway = "{mode: gateway, gateway: {httpRoute: qwen, stable: {inferenceService: qwen-stable, " +
	"service: qwen-stable-predictor}, canary: {inferenceService: qwen-canary, service: qwen-canary-predictor}}}"

// A running reconcile serves /metrics and /healthz on --metrics-listen.
// After real ticks (a bare repository, Argo CD's apiclient against the
// gRPC stand-in, static sources), a scrape says where each rollout is and
// what it took, and passes `promtool check metrics`; a plan deleted from
// Git leaves /metrics. One plan (--plan) is measured the same way.
func TestReconcileServesMetrics(t *testing.T) {
	promtooltest.Path(t) // skip (or fail) before starting anything
	bare := gitopsRemote(t, map[string]string{
		".canarybot/plans/qwen.yaml":  fleetPlan("qwen", qwenGateway, "manifests/overlays/qwen"),
		".canarybot/plans/fraud.yaml": fleetPlan("fraud-detector", "{mode: kserve, kserve: {inferenceService: fraud-detector}}", "manifests/overlays/fraud-detector"),
	})
	argo := &argocdtest.Server{Head: func(string) (string, error) {
		out, err := exec.Command("git", "--git-dir", bare, "rev-parse", "main").Output()
		return strings.TrimSpace(string(out)), err
	}}
	if err := argo.Start(); err != nil {
		t.Fatal(err)
	}
	defer argo.Stop()
	args := []string{"reconcile", "--repo", bare, "--prometheus", "http://127.0.0.1:1", "--argocd-server", argo.Addr(), "--argocd-plaintext", "--poll", "1s"}
	base, cmd := startReconcile(t, append(args, "--dir", t.TempDir())...)
	if body := httpGet(t, base+"/healthz"); body != "ok\n" {
		t.Errorf("/healthz = %q", body)
	}
	of := func(plan string) string { return `plan="` + plan + `",repo="` + bare + `"` }
	promoted := func(plan string) string { return `canarybot_rollout_phase{phase="Promoted",` + of(plan) + "} 1" }
	scrape := eventuallyScrape(t, base, func(s string) bool {
		return strings.Contains(s, promoted("qwen")) && strings.Contains(s, promoted("fraud-detector"))
	})
	for _, want := range []string{
		`canarybot_rollout_transitions_total{action="advance",` + of("qwen") + "} 1",
		`canarybot_rollout_transitions_total{action="promote",` + of("fraud-detector") + "} 1",
		`canarybot_rollout_canary_weight_percent{` + of("qwen") + "} 0",
		`canarybot_rollout_reconcile_failing{` + of("qwen") + "} 0",
		"canarybot_push_duration_seconds_count 6",
		`canarybot_registry_poll_errors_total{source="static"} 0`,
		`canarybot_reconcile_duration_seconds_count{result="success"}`,
		"# TYPE canarybot_sync_wait_seconds histogram",
	} {
		if !strings.Contains(scrape, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	promtooltest.CheckMetrics(t, []byte(scrape))

	// Delete fraud-detector's plan: its series go at the next fetch.
	work := filepath.Join(t.TempDir(), "work")
	gitRun(t, t.TempDir(), "clone", "--quiet", bare, work)
	gitRun(t, work, "rm", "--quiet", ".canarybot/plans/fraud.yaml")
	gitRun(t, work, "commit", "--quiet", "-m", "retire fraud-detector's plan")
	gitRun(t, work, "push", "--quiet", "origin", "HEAD:main")
	scrape = eventuallyScrape(t, base, func(s string) bool { return !strings.Contains(s, `plan="fraud-detector"`) })
	if !strings.Contains(scrape, promoted("qwen")) {
		t.Errorf("qwen's series went with fraud-detector's:\n%s", scrape)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("SIGTERM gave %v, want exit 0", err)
	}

	base, _ = startReconcile(t, append(args, "--dir", t.TempDir(), "--plan", ".canarybot/plans/qwen.yaml")...)
	eventuallyScrape(t, base, func(s string) bool {
		return strings.Contains(s, promoted("qwen")) && strings.Contains(s, `canarybot_rollout_decisions_total{action="wait",`+of("qwen")+"}")
	})
}

// startReconcile starts the binary with args and --metrics-listen on a
// free port, and returns the metrics server's base URL once it serves.
// The process is killed when the test ends, and its log shown if the
// test failed.
func startReconcile(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(binPath, append(args, "--metrics-listen", "127.0.0.1:0", "--log-level", "info")...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("canarybot %s's log:\n%s", strings.Join(args, " "), stderr.String())
		}
	})
	return "http://" + waitForLog(t, stderr, regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)), cmd
}

// --metrics-listen is refused where it cannot work.
func TestReconcileRefusesMetricsListenWithOnceOrOnListen(t *testing.T) {
	args := []string{"reconcile", "--repo", "/nonexistent", "--dir", t.TempDir(), "--prometheus", "http://127.0.0.1:1",
		"--argocd-server", "127.0.0.1:1"}
	for flags, want := range map[string]string{
		"--once --metrics-listen 127.0.0.1:0":                                           "--metrics-listen cannot be used with --once",
		"--listen 127.0.0.1:9 --registry-webhook-insecure --metrics-listen 127.0.0.1:9": "--listen serves the registry webhooks there",
	} {
		_, _, err := run(t, append(args, strings.Fields(flags)...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", flags, err, want)
		}
	}
}

// serve, as a GitHub App, serves the rollout metrics beside GitHub's API
// counters and rate limit on --listen's /metrics.
func TestServeServesRolloutMetrics(t *testing.T) {
	promtooltest.Path(t)
	gh := fakegithub.New(t, fakegithub.Options{WebhookSecret: "s3cret", Logger: slog.New(slog.DiscardHandler)})
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "manifests"), os.DirFS("../../manifests")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, ".canarybot/plans"), 0o755); err != nil {
		t.Fatal(err)
	}
	plan := fleetPlan("fraud", "{mode: kserve, kserve: {inferenceService: fraud-detector}}", "manifests/overlays/fraud-detector")
	if err := os.WriteFile(filepath.Join(dir, ".canarybot/plans/fraud.yaml"), []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	gh.CreateRepo("acme", "platform", "main", dir)
	gh.AddInstallation("acme")
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
		"--github-private-key-file", key, "--dir", t.TempDir(), "--listen", addr, "--poll", "1s", "--min-poll", "200ms",
		"--prometheus", "http://127.0.0.1:1", "--argocd-server", argo.Addr(), "--argocd-plaintext")
	cmd.Env = append(os.Environ(), "GITHUB_WEBHOOK_SECRET=s3cret")
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
	waitUntil(t, "serve to listen", time.Minute, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	scrape := eventuallyScrape(t, "http://"+addr, func(s string) bool {
		return strings.Contains(s, `canarybot_rollout_phase{phase="Promoted",plan="fraud",repo="acme/platform"} 1`)
	})
	for _, want := range []string{
		`canarybot_rollout_transitions_total{action="promote",plan="fraud",repo="acme/platform"} 1`,
		`canarybot_github_api_requests_total{endpoint="/repos/{owner}/{repo}/pulls",method="POST",status="201"}`,
		`canarybot_github_rate_limit_remaining{resource="core"}`,
		`canarybot_github_rate_limit_limit{resource="core"}`,
	} {
		if !strings.Contains(scrape, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	promtooltest.CheckMetrics(t, []byte(scrape))
}

// waitForLog waits for re in the log and returns its first group.
func waitForLog(t *testing.T, log *syncBuffer, re *regexp.Regexp) string {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(log.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no %s in the log:\n%s", re, log.String())
	return ""
}

// eventuallyScrape scrapes base/metrics until ok holds, and returns it.
func eventuallyScrape(t *testing.T, base string, ok func(string) bool) string {
	t.Helper()
	var s string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if s = httpGet(t, base+"/metrics"); ok(s) {
			return s
		}
	}
	t.Fatalf("/metrics never got there:\n%s", s)
	return ""
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}
