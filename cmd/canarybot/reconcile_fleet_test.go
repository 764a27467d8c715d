package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/argocd/argocdtest"
	"github.com/canarybot/canarybot/pkg/canary"
)

// fleetPlan is a plan with a static pinned candidate and two steps.
func fleetPlan(name, traffic, overlay string) string {
	return `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: ` + name + `}
spec:
  model:
    name: ` + name + `
    source: {static: {uri: "oci://ghcr.io/acme/` + name + `@sha256:` + strings.Repeat("9", 64) + `", version: "9.0.0"}}
  traffic: ` + traffic + `
  overlay: ` + overlay + `
  argocd: {application: ` + name + `}
  steps:
  - setWeight: 50
  - setWeight: 100
`
}

// gitopsRemote is a bare repository seeded with this repository's
// manifests/ and the given files.
func gitopsRemote(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	bare := filepath.Join(root, "gitops.git")
	gitRun(t, root, "init", "--bare", "--quiet", "-b", "main", bare)
	work := filepath.Join(root, "seed")
	if err := os.CopyFS(filepath.Join(work, "manifests"), os.DirFS("../../manifests")); err != nil {
		t.Fatal(err)
	}
	for p, content := range files {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitRun(t, work, "init", "--quiet", "-b", "main")
	gitRun(t, work, "add", "-A")
	gitRun(t, work, "commit", "--quiet", "-m", "seed")
	gitRun(t, work, "push", "--quiet", bare, "HEAD:main")
	return bare
}

// One reconcile process drives every plan of two repositories, in both
// traffic modes, against Argo CD's real apiclient (a fake
// ApplicationService over gRPC that has synced every commit): --once
// prints one line per plan, an invalid plan is reported and the others go
// on, repeated runs roll every plan out with each transition once, and
// SIGTERM is a clean shutdown.
func TestReconcileFleetAcrossRepositories(t *testing.T) {
	gateway := "{mode: gateway, gateway: {httpRoute: qwen, stable: {inferenceService: qwen-stable, service: qwen-stable-predictor}, " +
		"canary: {inferenceService: qwen-canary, service: qwen-canary-predictor}}}"
	platform := gitopsRemote(t, map[string]string{
		".canarybot/plans/qwen.yaml": fleetPlan("qwen", gateway, "manifests/overlays/qwen"),
	})
	fraud := gitopsRemote(t, map[string]string{
		".canarybot/plans/fraud.yaml":  fleetPlan("fraud-detector", "{mode: kserve, kserve: {inferenceService: fraud-detector}}", "manifests/overlays/fraud-detector"),
		".canarybot/plans/broken.yaml": strings.Replace(fleetPlan("broken", "{mode: kserve}", "manifests/overlays/broken"), "setWeight: 50", "setWeight: fifty", 1),
	})
	heads := map[string]string{"qwen": platform, "fraud-detector": fraud}
	argo := &argocdtest.Server{Head: func(app string) (string, error) {
		cmd := exec.Command("git", "rev-parse", "main")
		cmd.Dir = heads[app]
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}}
	if err := argo.Start(); err != nil {
		t.Fatal(err)
	}
	defer argo.Stop()
	dir := t.TempDir()
	args := []string{"reconcile", "--repo", platform, "--repo", fraud, "--dir", dir,
		"--prometheus", "http://127.0.0.1:1", "--argocd-server", argo.Addr(), "--argocd-plaintext", "--log-level", "info"}
	var lines []string
	for range 3 { // start, advance to 100%, promote
		out, stderr, err := runBinary(t, nil, append(args, "--once")...)
		if err != nil {
			t.Fatalf("reconcile --once: %v\n%s%s", err, out, stderr)
		}
		if !strings.Contains(stderr, "file=.canarybot/plans/broken.yaml") || !strings.Contains(stderr, "want an integer") {
			t.Errorf("the invalid plan was not reported:\n%s", stderr)
		}
		lines = append(lines, strings.TrimSpace(out))
	}
	for i, want := range [][]string{
		{"fraud-detector: start (new artifact 9.0.0", "qwen: start (new artifact 9.0.0"},
		{"fraud-detector: advance (weight 50% synced)", "qwen: advance (weight 50% synced)"},
		{"fraud-detector: promote", "qwen: promote"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("run %d lacks %q:\n%s", i+1, w, lines[i])
			}
		}
	}
	for plan, bare := range heads {
		st := readState(t, bare, plan)
		if st.Status.Phase != canary.PhasePromoted || !strings.Contains(st.Status.Stable.URI, strings.Repeat("9", 64)) {
			t.Errorf("%s: %s with stable %s, want promoted", plan, st.Status.Phase, st.Status.Stable.URI)
		}
		log := gitRun(t, bare, "log", "--format=%s", "main")
		if n := strings.Count(log, "\n") + 1; n != 4 { // seed + three transitions
			t.Errorf("%s: %d commits, want the seed and 3 transitions:\n%s", plan, n, log)
		}
	}

	// Running, it stops cleanly on SIGTERM: driving every plan, or one.
	expectCleanStop(t, append(args, "--poll", "1s"), "serving plans")
	one := []string{"reconcile", "--repo", platform, "--dir", filepath.Join(t.TempDir(), "one"), "--plan", ".canarybot/plans/qwen.yaml",
		"--prometheus", "http://127.0.0.1:1", "--argocd-server", argo.Addr(), "--argocd-plaintext", "--log-level", "debug", "--poll", "1s"}
	expectCleanStop(t, one, "qwen")
}

// expectCleanStop starts the binary, waits for ready in its log, sends
// SIGTERM and expects exit 0.
func expectCleanStop(t *testing.T, args []string, ready string) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stderr.String(), ready) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%v: SIGTERM gave %v, want exit 0\n%s", args[:3], err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("no exit 30 s after SIGTERM\n%s", stderr.String())
	}
}

// syncBuffer is a strings.Builder safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// readState reads a plan's state on main with the git CLI.
func readState(t *testing.T, bare, plan string) *canary.RolloutState {
	t.Helper()
	st, err := canary.ParseState([]byte(gitRun(t, bare, "show", "main:"+canary.StatePath(plan)) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
