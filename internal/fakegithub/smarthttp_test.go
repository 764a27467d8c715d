package fakegithub

import (
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

// authURL is the clone URL with basic-auth credentials.
func authURL(t *testing.T, s *Server, user, token string) string {
	t.Helper()
	u, err := url.Parse(s.CloneURL(owner, name))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		u.User = url.UserPassword(user, token)
	}
	return u.String()
}

func TestGitOverSmartHTTP(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	tok, err := appInstallationToken(ctx, f.app)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, token string
		cloneOK, pushOK   bool
		message           string
	}{
		{"installation token", "x-access-token", tok, true, true, ""},
		{"writer", "alice", f.tok["alice"], true, true, ""},
		{"reader", "rita", f.tok["rita"], true, false, "denied to rita"},
		{"bad token", "x-access-token", "ghs_bogus", false, false, "Authentication failed"},
		{"no credentials", "", "", false, false, "could not read Username"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "clone")
			out, err := gitErr(t.TempDir(), "clone", "--quiet", authURL(t, f.s, tc.user, tc.token), dir)
			if (err == nil) != tc.cloneOK || !tc.cloneOK && !strings.Contains(out, tc.message) {
				t.Fatalf("clone: %v %s; want ok=%v with %q", err, out, tc.cloneOK, tc.message)
			}
			if !tc.cloneOK {
				return
			}
			if got := git(t, dir, "show", "HEAD:apps/qwen/overlay/weights.yaml"); got != "weight: 0" {
				t.Errorf("cloned file = %q", got)
			}
			writeFiles(t, dir, map[string]string{"pushed.txt": tc.name + "\n"})
			git(t, dir, "add", "-A")
			git(t, dir, "commit", "--quiet", "-m", "push "+tc.name)
			branch := "pushed-" + string(rune('a'+i))
			out, err = gitErr(dir, "push", "--quiet", "origin", "HEAD:refs/heads/"+branch)
			if (err == nil) != tc.pushOK || !tc.pushOK && !strings.Contains(out, tc.message) {
				t.Fatalf("push: %v %s; want ok=%v with %q", err, out, tc.pushOK, tc.message)
			}
			if tc.pushOK && git(t, f.bare, "rev-parse", branch) != git(t, dir, "rev-parse", "HEAD") {
				t.Error("the bare repository does not hold the pushed commit")
			}
		})
	}
	counts := map[string]int{}
	for _, c := range f.s.Calls() {
		if strings.HasPrefix(c.Route, "GIT ") {
			counts[c.Route+" "+string(c.Token)]++
		}
	}
	if counts["GIT /{owner}/{repo}.git/git-receive-pack installation"] != 1 || counts["GIT /{owner}/{repo}.git/info/refs?service=git-upload-pack none"] < 2 {
		t.Errorf("git calls %v", counts)
	}
}

// appInstallationToken makes the App's client show its current token by
// asking ghinstallation through a request (it is the only holder).
func appInstallationToken(ctx context.Context, c *github.Client) (string, error) {
	req, err := c.NewRequest("GET", "repos/acme/gitops", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Client().Transport.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	return strings.TrimPrefix(resp.Request.Header.Get("Authorization"), "token "), nil
}

func TestPushesMovePullRequestsAndProtectionHolds(t *testing.T) {
	f := newFixture(t, Options{})
	pr := f.openPR(t, "topic", map[string]string{"x": "1\n"})
	f.s.Protect(owner, name, "main", 1)
	dir := filepath.Join(t.TempDir(), "clone")
	git(t, t.TempDir(), "clone", "--quiet", authURL(t, f.s, "alice", f.tok["alice"]), dir)
	git(t, dir, "checkout", "--quiet", "topic")
	writeFiles(t, dir, map[string]string{"x": "2\n"})
	git(t, dir, "commit", "--quiet", "-am", "more")
	git(t, dir, "push", "--quiet", "origin", "topic")
	head := git(t, dir, "rev-parse", "HEAD")
	if got := f.s.PR(owner, name, pr.GetNumber()); got.GetHead().GetSHA() != head {
		t.Errorf("PR head %s after a push, want %s", got.GetHead().GetSHA(), head)
	}
	wait(t, f.s)
	var sync int
	for _, d := range f.s.Deliveries() {
		if d.Event == "pull_request" && d.Action == "synchronize" {
			sync++
			var ev github.PullRequestEvent
			if err := json.Unmarshal(d.Body, &ev); err != nil || ev.GetBefore() != pr.GetHead().GetSHA() || ev.GetAfter() != head ||
				ev.GetPullRequest().GetHead().GetSHA() != head || ev.GetInstallation().GetID() != f.s.InstallationID() {
				t.Errorf("synchronize payload: %v %s", err, d.Body)
			}
		}
	}
	if sync != 1 {
		t.Errorf("%d synchronize events after one push, want 1", sync)
	}
	out, err := gitErr(dir, "push", "--quiet", "origin", "HEAD:main")
	if err == nil || !strings.Contains(out, "GH006: Protected branch update failed for refs/heads/main") {
		t.Errorf("push to protected main: %v %s", err, out)
	}
	// Deleting the head branch closes the PR, as on GitHub.
	git(t, dir, "push", "--quiet", "origin", ":topic")
	if got := f.s.PR(owner, name, pr.GetNumber()); got.GetState() != "closed" || got.GetMerged() || got.GetHead().GetSHA() != head {
		t.Errorf("PR after its branch was deleted: %+v", got)
	}
}
