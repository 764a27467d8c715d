package gitops

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// remote is a real bare repository in a temp dir, seeded with one commit
// made by the git CLI.
type remote struct {
	root string // GIT_PROJECT_ROOT: the parent of bare
	bare string
	url  string // file:// URL of bare
}

// seedFiles is the content of the seed commit.
func seedFiles() map[string]string {
	return map[string]string{
		"README.md":                         "gitops repo\n",
		"apps/llama/overlay/weights.yaml":   "weight: 0\n",
		"apps/llama/base/inference.yaml":    "kind: InferenceService\n",
		".canarybot/plans/llama.yaml":       "kind: CanaryPlan\n",
		"apps/mistral/overlay/weights.yaml": "weight: 0\n",
	}
}

func newRemote(t *testing.T) *remote {
	t.Helper()
	root := t.TempDir()
	rm := &remote{root: root, bare: filepath.Join(root, "remote.git")}
	rm.url = "file://" + rm.bare
	runGit(t, root, "init", "--bare", "--quiet", "-b", "main", rm.bare)
	runGit(t, rm.bare, "config", "http.receivepack", "true")
	rm.humanCommit(t, "seed", seedFiles())
	return rm
}

// gitEnv isolates the git CLI from the machine's configuration.
func gitEnv(home string) []string {
	return append(os.Environ(),
		"HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+filepath.Join(home, "gitconfig"),
		"GIT_AUTHOR_NAME=Human", "GIT_AUTHOR_EMAIL=human@example.com",
		"GIT_COMMITTER_NAME=Human", "GIT_COMMITTER_EMAIL=human@example.com",
	)
}

// runGit runs the git CLI in dir and returns its trimmed stdout.
func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// humanCommit commits files to main with the git CLI, as a person
// editing the repo outside canarybot would, and returns the new head.
func (rm *remote) humanCommit(t *testing.T, msg string, files map[string]string) string {
	t.Helper()
	work := filepath.Join(t.TempDir(), "human")
	runGit(t, rm.root, "clone", "--quiet", rm.bare, work)
	for p, content := range files {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runGit(t, work, "add", "-A")
	runGit(t, work, "commit", "--quiet", "-m", msg)
	runGit(t, work, "push", "--quiet", "origin", "HEAD:refs/heads/main")
	return runGit(t, work, "rev-parse", "HEAD")
}

// head is the remote's main, read with the git CLI.
func (rm *remote) head(t *testing.T) string {
	t.Helper()
	return runGit(t, rm.bare, "rev-parse", "refs/heads/main")
}

// show is a file's content at rev in the remote, read with the git CLI.
func (rm *remote) show(t *testing.T, rev, path string) string {
	t.Helper()
	return runGit(t, rm.bare, "show", rev+":"+path)
}

// serveHTTP serves the remote with the real `git http-backend` over
// smart HTTP, requiring basic auth with TokenUsername and token. It
// returns the repo's URL and a counter of refused requests.
func (rm *remote) serveHTTP(t *testing.T, token string) (string, *atomic.Int32) {
	url, refused, _ := rm.serveHTTPCounting(t, token)
	return url, refused
}

// serveHTTPCounting is serveHTTP that also counts the pushes
// (git-receive-pack requests) it serves.
func (rm *remote) serveHTTPCounting(t *testing.T, token string) (string, *atomic.Int32, *atomic.Int32) {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git CLI: %v", err)
	}
	backend := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + rm.root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + t.TempDir(),
		},
	}
	var refused, pushes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/git-receive-pack") {
			pushes.Add(1)
		}
		user, pass, ok := req.BasicAuth()
		if !ok || user != TokenUsername || pass != token {
			refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/remote.git", &refused, &pushes
}

// fakeClock returns at once from After and records the waits.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *fakeClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// testOptions are Options for url with a fresh Dir and a fake clock.
func testOptions(t *testing.T, url string) Options {
	t.Helper()
	return Options{
		URL:    url,
		Dir:    filepath.Join(t.TempDir(), "clone"),
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:  newFakeClock(),
	}
}

func openRepo(t *testing.T, o Options) *Repo {
	t.Helper()
	r, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return r
}

// testWriter sends logs to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
