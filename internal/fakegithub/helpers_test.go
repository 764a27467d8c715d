package fakegithub

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
)

const owner, name = "acme", "gitops"

// testClock is a settable clock. It starts at the real time because
// ghinstallation stamps its JWTs with the real time.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a server with acme/gitops seeded on main, the App's client
// and a few people.
type fixture struct {
	s     *Server
	clock *testClock
	app   *github.Client
	bare  string
	tok   map[string]string // personal tokens by login
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	clock := newTestClock()
	if opts.Clock == nil {
		opts.Clock = clock.Now
	}
	opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := New(t, opts)
	seed := t.TempDir()
	writeFiles(t, seed, map[string]string{
		"README.md":                      "gitops\n",
		"apps/qwen/overlay/weights.yaml": "weight: 0\n",
		"apps/qwen/base/isvc.yaml":       "kind: InferenceService\n",
	})
	s.CreateRepo(owner, name, "main", seed)
	f := &fixture{s: s, clock: clock, bare: s.RepoPath(owner, name), tok: map[string]string{}}
	for login, perm := range map[string]string{"alice": PermWrite, "bob": PermAdmin, "rita": PermRead} {
		f.tok[login] = s.AddUser(login, perm)
	}
	f.app = appClient(t, s)
	return f
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// appClient is go-github authenticated as the App's installation through
// ghinstallation, as canarybot runs.
func appClient(t *testing.T, s *Server) *github.Client {
	t.Helper()
	apps, err := ghinstallation.NewAppsTransport(http.DefaultTransport, s.AppID(), s.PrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	apps.BaseURL = s.URL()
	inst := ghinstallation.NewFromAppsTransport(apps, s.InstallationID())
	inst.BaseURL = s.URL()
	return withBase(t, s, github.NewClient(&http.Client{Transport: inst}))
}

// userClient is go-github with a personal token.
func (f *fixture) userClient(t *testing.T, login string) *github.Client {
	t.Helper()
	return withBase(t, f.s, github.NewClient(nil).WithAuthToken(f.tok[login]))
}

func withBase(t *testing.T, s *Server, c *github.Client) *github.Client {
	t.Helper()
	u, err := url.Parse(s.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL, c.UploadURL = u, u
	return c
}

// git runs the git CLI in dir and returns its trimmed output.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitErr(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func gitErr(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	home, err := os.MkdirTemp("", "fakegithub-home")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(home)
	cmd.Env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Human", "GIT_AUTHOR_EMAIL=human@example.com",
		"GIT_COMMITTER_NAME=Human", "GIT_COMMITTER_EMAIL=human@example.com")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// commitFiles commits files on top of parent through the API (blob for
// one, content for the rest) and returns the commit.
func (f *fixture) commitFiles(t *testing.T, c *github.Client, parent, msg string, files map[string]string) *github.Commit {
	t.Helper()
	ctx := context.Background()
	base, _, err := c.Git.GetCommit(ctx, owner, name, parent)
	if err != nil {
		t.Fatalf("get commit %s: %v", parent, err)
	}
	var entries []*github.TreeEntry
	for p, content := range files {
		entries = append(entries, &github.TreeEntry{Path: github.String(p), Mode: github.String("100644"),
			Type: github.String("blob"), Content: github.String(content)})
	}
	tree, _, err := c.Git.CreateTree(ctx, owner, name, base.GetTree().GetSHA(), entries)
	if err != nil {
		t.Fatalf("create tree: %v", err)
	}
	cm, _, err := c.Git.CreateCommit(ctx, owner, name, &github.Commit{Message: github.String(msg), Tree: tree,
		Parents: []*github.Commit{{SHA: github.String(parent)}}}, nil)
	if err != nil {
		t.Fatalf("create commit: %v", err)
	}
	return cm
}

// branch points refs/heads/b at sha, creating it.
func (f *fixture) branch(t *testing.T, c *github.Client, b, sha string) {
	t.Helper()
	_, _, err := c.Git.CreateRef(context.Background(), owner, name, &github.Reference{
		Ref: github.String("refs/heads/" + b), Object: &github.GitObject{SHA: github.String(sha)}})
	if err != nil {
		t.Fatalf("create ref %s: %v", b, err)
	}
}

// openPR commits files on a new branch off main and opens a PR as the App.
func (f *fixture) openPR(t *testing.T, b string, files map[string]string) *github.PullRequest {
	t.Helper()
	main := git(t, f.bare, "rev-parse", "main")
	cm := f.commitFiles(t, f.app, main, "change on "+b, files)
	f.branch(t, f.app, b, cm.GetSHA())
	pr, _, err := f.app.PullRequests.Create(context.Background(), owner, name, &github.NewPullRequest{
		Title: github.String("Change " + b), Head: github.String(b), Base: github.String("main"), Body: github.String("body")})
	if err != nil {
		t.Fatalf("open PR from %s: %v", b, err)
	}
	return pr
}

// status is the HTTP status of a go-github error, 0 for none.
func status(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) {
		return er.Response.StatusCode
	}
	var rl *github.RateLimitError
	if errors.As(err, &rl) {
		return rl.Response.StatusCode
	}
	var ab *github.AbuseRateLimitError
	if errors.As(err, &ab) {
		return ab.Response.StatusCode
	}
	return 0
}

// code is 200 for no error, else the error's status.
func code(err error) int {
	if err == nil {
		return http.StatusOK
	}
	return status(err)
}

// signJWT signs claims with key as RS256.
func signJWT(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	unsigned := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims)
	digest := sha256.Sum256([]byte(unsigned))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// testWriter sends logs to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
