package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

const retryPlan = `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: fraud-detector}
spec:
  model:
    name: fraud-detector
    source: {oci: {repository: ghcr.io/acme/fraud-detector}}
  traffic: {mode: kserve, kserve: {inferenceService: fraud-detector}}
  overlay: overlays/fraud-detector
  argocd: {application: fraud-detector}
  steps:
  - setWeight: 10
  - setWeight: 100
`

var (
	retryV1 = canary.Artifact{URI: "oci://ghcr.io/acme/fraud-detector@sha256:" + strings.Repeat("1", 64), Version: "v1"}
	retryV2 = canary.Artifact{URI: "oci://ghcr.io/acme/fraud-detector@sha256:" + strings.Repeat("2", 64), Version: "v2"}
	retryV3 = canary.Artifact{URI: "oci://ghcr.io/acme/fraud-detector@sha256:" + strings.Repeat("3", 64), Version: "v3"}
)

// git runs the git CLI, isolated from the machine's configuration.
func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+filepath.Join(home, "gitconfig"),
		"GIT_AUTHOR_NAME=Human", "GIT_AUTHOR_EMAIL=human@example.com",
		"GIT_COMMITTER_NAME=Human", "GIT_COMMITTER_EMAIL=human@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// retryRemote is a real bare repository holding the plan and a state that
// reverted v2 and v3.
func retryRemote(t *testing.T, withState bool) string {
	t.Helper()
	root := t.TempDir()
	bare := filepath.Join(root, "gitops.git")
	gitRun(t, root, "init", "--bare", "--quiet", "-b", "main", bare)
	work := filepath.Join(root, "seed")
	gitRun(t, root, "clone", "--quiet", bare, work)
	files := map[string][]byte{"plans/fraud.yaml": []byte(retryPlan)}
	if withState {
		st := canary.NewState("fraud-detector", retryV1)
		st.Status.Phase = canary.PhaseReverted
		st.Status.Failed = []canary.Artifact{retryV2, retryV3}
		b, err := canary.MarshalState(st)
		if err != nil {
			t.Fatal(err)
		}
		files[canary.StatePath("fraud-detector")] = b
	}
	for p, b := range files {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitRun(t, work, "add", "-A")
	gitRun(t, work, "commit", "--quiet", "-m", "seed")
	gitRun(t, work, "push", "--quiet", "origin", "HEAD:main")
	return bare
}

func TestRetryCommitsTheRemovalFromTheFailedList(t *testing.T) {
	bare := retryRemote(t, true)
	dir := filepath.Join(t.TempDir(), "clone")
	out, stderr, err := run(t, "retry", "--repo", "file://"+bare, "--dir", dir, "--plan", "plans/fraud.yaml",
		"--artifact", retryV2.URI, "--reason", "the feature pipeline bug is fixed")
	if err != nil {
		t.Fatalf("retry: %v\n%s%s", err, out, stderr)
	}
	if !strings.Contains(out, "fraud-detector: "+retryV2.URI+" is off the failed list") {
		t.Errorf("output = %q", out)
	}
	if n := gitRun(t, bare, "rev-list", "--count", "main"); n != "2" {
		t.Fatalf("%s commits on main, want the seed and one retry", n)
	}
	msg := gitRun(t, bare, "log", "-1", "--format=%B", "main")
	for _, want := range []string{"canary(fraud-detector): retry v2", "the feature pipeline bug is fixed",
		"Canarybot-Plan: fraud-detector", "Canarybot-Action: retry", "Canarybot-Artifact: " + retryV2.URI} {
		if !strings.Contains(msg, want) {
			t.Errorf("commit message lacks %q:\n%s", want, msg)
		}
	}
	if files := gitRun(t, bare, "show", "--format=", "--name-only", "main"); files != canary.StatePath("fraud-detector") {
		t.Errorf("retry commit touched %q, want only the state file", files)
	}
	st, err := canary.ParseState([]byte(gitRun(t, bare, "show", "main:"+canary.StatePath("fraud-detector"))))
	if err != nil {
		t.Fatal(err)
	}
	s := st.Status
	if s.IsFailed(retryV2.URI) || !s.IsFailed(retryV3.URI) || s.Stable != retryV1 || s.Phase != canary.PhaseReverted {
		t.Errorf("state after retry: %+v", s)
	}
	h := s.History[len(s.History)-1]
	if h.Action != canary.ActionRetry || h.Artifact != retryV2.URI || time.Since(h.At) > time.Hour {
		t.Errorf("history entry = %+v", h)
	}

	// Retrying it again is an error and commits nothing.
	_, _, err = run(t, "retry", "--repo", "file://"+bare, "--dir", dir, "--plan", "plans/fraud.yaml", "--artifact", retryV2.URI)
	if err == nil || !strings.Contains(err.Error(), "not on the failed list") || !strings.Contains(err.Error(), retryV3.URI) {
		t.Errorf("second retry: %v", err)
	}
	if n := gitRun(t, bare, "rev-list", "--count", "main"); n != "2" {
		t.Errorf("a failed retry committed: %s commits", n)
	}
}

func TestRetryRefusesBadInput(t *testing.T) {
	bare := retryRemote(t, false)
	dir := filepath.Join(t.TempDir(), "clone")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"mutable artifact", []string{"--plan", "plans/fraud.yaml", "--artifact", "oci://ghcr.io/acme/fraud-detector:v2"},
			`tag "v2" can move to another digest`},
		{"never rolled out", []string{"--plan", "plans/fraud.yaml", "--artifact", retryV2.URI}, "has never rolled out"},
		{"plan path escapes", []string{"--plan", "../plan.yaml", "--artifact", retryV2.URI}, "--plan"},
		{"no such plan", []string{"--plan", "plans/nope.yaml", "--artifact", retryV2.URI}, "read plan plans/nope.yaml"},
	}
	for _, tc := range cases {
		args := append([]string{"retry", "--repo", "file://" + bare, "--dir", dir}, tc.args...)
		if _, _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", tc.name, err, tc.want)
		}
	}
	if n := gitRun(t, bare, "rev-list", "--count", "main"); n != "1" {
		t.Errorf("refused retries committed: %s commits", n)
	}
}
