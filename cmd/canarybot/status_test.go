package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveGit serves the bare repositories under root with the real `git
// http-backend`, answering only requests with basic auth whose user or
// password is token (GitHub takes a token as either).
func serveGit(t *testing.T, root, token string) string {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git CLI: %v", err)
	}
	backend := &cgi.Handler{Path: gitBin, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + t.TempDir()}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); u != token && p != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// runBinary runs the built canarybot and returns its stdout, its stderr
// and its error.
func runBinary(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(cmd.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// A token in --repo never reaches the terminal: not in status's own
// lines, not in the clone error (where Go's HTTP client quotes the URL it
// dialled, hiding a password but not a user-only or query token), not in
// a log line.
func TestStatusNeverPrintsCredentials(t *testing.T) {
	for name, repo := range map[string]string{
		"user only":     "https://SECRET@127.0.0.1:1/x.git",
		"user:password": "https://x-access-token:SECRET@127.0.0.1:1/x.git",
		"query token":   "https://127.0.0.1:1/x.git?access_token=SECRET",
		"bad port":      "https://u:SECRET@127.0.0.1:port/x.git",
	} {
		stdout, stderr, err := runBinary(t, nil, "status", "--log-level", "debug", "--repo", repo)
		if err == nil || strings.Contains(stdout+stderr, "SECRET") || !strings.Contains(stderr, "error: ") {
			t.Errorf("%s: status = %v\nstdout: %s\nstderr: %s\nwant an error that does not show SECRET", name, err, stdout, stderr)
		}
	}

	bare := retryRemote(t, false) // a repo with no rollout yet
	base := serveGit(t, filepath.Dir(bare), "SECRET")
	for name, repo := range map[string]string{
		"user only":     strings.Replace(base, "http://", "http://SECRET@", 1) + "/gitops.git",
		"user:password": strings.Replace(base, "http://", "http://x-access-token:SECRET@", 1) + "/gitops.git",
	} {
		stdout, stderr, err := runBinary(t, nil, "status", "--log-level", "debug", "--repo", repo)
		if err != nil || strings.Contains(stdout+stderr, "SECRET") || !strings.Contains(stdout, "no rollouts in http://xxxxx") {
			t.Errorf("%s: status = %v\nstdout: %s\nstderr: %s\nwant the success line without SECRET", name, err, stdout, stderr)
		}
	}
}

// status takes the token's variable as --git-token-env, as every other
// command does; --token-env still works, with a deprecation notice on
// stderr, and is gone from the help.
func TestStatusGitTokenEnv(t *testing.T) {
	bare := retryRemote(t, true)
	repo := serveGit(t, filepath.Dir(bare), "s3cret") + "/gitops.git"
	env := []string{"CANARYBOT_TEST_TOKEN=s3cret", "CANARYBOT_TEST_EMPTY="}

	for _, flag := range []string{"--git-token-env", "--token-env"} {
		stdout, stderr, err := runBinary(t, env, "status", "--repo", repo, flag, "CANARYBOT_TEST_TOKEN")
		if err != nil || !strings.HasPrefix(stdout, "fraud-detector: ") {
			t.Errorf("status %s: %v\nstdout: %s\nstderr: %s", flag, err, stdout, stderr)
		}
		deprecated := strings.Contains(stderr, "--token-env has been deprecated, use --git-token-env")
		if deprecated != (flag == "--token-env") {
			t.Errorf("status %s: stderr %q", flag, stderr)
		}
		_, stderr, err = runBinary(t, env, "status", "--repo", repo, flag, "CANARYBOT_TEST_EMPTY")
		if err == nil || !strings.Contains(stderr, "--git-token-env CANARYBOT_TEST_EMPTY: the variable is empty") {
			t.Errorf("status %s with an empty variable: %v, stderr %q", flag, err, stderr)
		}
	}
	if _, stderr, err := runBinary(t, env, "status", "--repo", repo); err == nil || !strings.Contains(stderr, "authentication required") {
		t.Errorf("status without a token: %v, stderr %q; want the server's refusal", err, stderr)
	}

	help, _, err := run(t, "status", "--help")
	if err != nil || !strings.Contains(help, "--git-token-env string") || strings.Contains(help, "--token-env") {
		t.Errorf("status --help (%v) should list --git-token-env only:\n%s", err, help)
	}
}

// Log lines hide the credentials of URLs in messages, strings and errors.
func TestLoggerHidesCredentials(t *testing.T) {
	var stderr bytes.Buffer
	g := &globals{logLevel: "debug", stderr: &stderr}
	log, err := g.logger()
	if err != nil {
		t.Fatal(err)
	}
	log.Info("cloning https://SECRET@h/x.git", "repo", "https://u:SECRET@h/x.git",
		"err", errors.New(`Get "https://h/x?token=SECRET": EOF`), slog.Group("g", "url", "https://SECRET@h"),
		"took", time.Second)
	out := stderr.String()
	if strings.Contains(out, "SECRET") || !strings.Contains(out, "repo=https://xxxxx:xxxxx@h/x.git") || !strings.Contains(out, "took=1s") {
		t.Errorf("log line:\n%s", out)
	}
}

// retry's help names each value as its Use line does. --artifact's
// placeholder was "canarybot status", which pflag took from the
// backquoted words of its usage, and --repo's was "stringArray".
func TestRetryHelp(t *testing.T) {
	help, _, err := run(t, "retry", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"canarybot retry --repo URL --dir DIR --plan PATH --artifact URI [flags]",
		"--artifact URI ", "the reverted artifact's pinned URI, as 'canarybot status' lists it (required)",
		"--repo URL ", "--dir DIR ", "--plan PATH ", "--branch BRANCH ", "--git-token-env NAME ",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("retry --help lacks %q:\n%s", want, help)
		}
	}
	for _, bad := range []string{"--artifact canarybot", "stringArray", "`"} {
		if strings.Contains(help, bad) {
			t.Errorf("retry --help garbles a placeholder (%q):\n%s", bad, help)
		}
	}
}
