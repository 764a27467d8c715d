package fakegithub

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
)

// multi is a fixture with the App installed three times: the default
// installation (acme/gitops and whatever else nobody covers), north (all
// of north/api and north/web) and south (south/svc only, not south/db).
type multi struct {
	*fixture
	def, north, south int64
	jwt               *github.Client // authenticated as the App (JWT)
}

const defaultInstallation = 5

func newMulti(t *testing.T, opts Options) *multi {
	t.Helper()
	opts.InstallationID = defaultInstallation
	f := newFixture(t, opts)
	seed := t.TempDir()
	writeFiles(t, seed, map[string]string{"README.md": "seed\n"})
	for _, full := range []string{"north/api", "north/web", "south/svc", "south/db"} {
		o, n, _ := strings.Cut(full, "/")
		f.s.CreateRepo(o, n, "main", seed)
	}
	m := &multi{fixture: f, def: f.s.InstallationID()}
	m.north = f.s.AddInstallation("north")
	m.south = f.s.AddInstallation("south", "svc")
	apps, err := ghinstallation.NewAppsTransport(http.DefaultTransport, f.s.AppID(), f.s.PrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	apps.BaseURL = f.s.URL()
	m.jwt = withBase(t, f.s, github.NewClient(&http.Client{Transport: apps}))
	return m
}

// installClient is go-github as installation id through ghinstallation.
func (m *multi) installClient(t *testing.T, id int64) *github.Client {
	t.Helper()
	apps, err := ghinstallation.NewAppsTransport(http.DefaultTransport, m.s.AppID(), m.s.PrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	apps.BaseURL = m.s.URL()
	inst := ghinstallation.NewFromAppsTransport(apps, id)
	inst.BaseURL = m.s.URL()
	return withBase(t, m.s, github.NewClient(&http.Client{Transport: inst}))
}

// token exchanges the App's JWT for a token of installation id.
func (m *multi) token(t *testing.T, id int64) *github.InstallationToken {
	t.Helper()
	tok, _, err := m.jwt.Apps.CreateInstallationToken(context.Background(), id, nil)
	if err != nil {
		t.Fatalf("token of installation %d: %v", id, err)
	}
	return tok
}

func (m *multi) tokenClient(t *testing.T, tok string) *github.Client {
	t.Helper()
	return withBase(t, m.s, github.NewClient(nil).WithAuthToken(tok))
}

// gitURL is the clone URL of owner/repo with an installation token.
func gitURL(t *testing.T, s *Server, owner, repo, token string) string {
	t.Helper()
	u, err := url.Parse(s.CloneURL(owner, repo))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("x-access-token", token)
	return u.String()
}

func fullNames(rs []*github.Repository) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.GetFullName())
	}
	return out
}

func TestInstallationsAreListedPageByPage(t *testing.T) {
	ctx := context.Background()
	m := newMulti(t, Options{})
	var got []*github.Installation
	opts := &github.ListOptions{PerPage: 1}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		page, resp, err := m.jwt.Apps.ListInstallations(ctx, opts)
		if err != nil || len(page) != 1 {
			t.Fatalf("page %d: %d installations, %v", opts.Page, len(page), err)
		}
		if pages == 0 && (resp.NextPage != 2 || resp.LastPage != 3 ||
			!strings.Contains(resp.Header.Get("Link"), `rel="next"`) || !strings.Contains(resp.Header.Get("Link"), `rel="last"`)) {
			t.Errorf("first page: next %d last %d Link %q, want 2, 3", resp.NextPage, resp.LastPage, resp.Header.Get("Link"))
		}
		got = append(got, page...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	want := []struct {
		id              int64
		account, choice string
	}{{m.def, "", "all"}, {m.north, "north", "all"}, {m.south, "south", "selected"}}
	if len(got) != len(want) {
		t.Fatalf("%d installations, want %d", len(got), len(want))
	}
	for i, w := range want {
		in := got[i]
		if in.GetID() != w.id || in.GetAccount().GetLogin() != w.account || in.GetRepositorySelection() != w.choice ||
			in.GetAppID() != m.s.AppID() || !strings.HasSuffix(in.GetAccessTokensURL(), "/app/installations/"+strconv.FormatInt(w.id, 10)+"/access_tokens") {
			t.Errorf("installation %d = id %d account %q selection %q app %d tokens %q; want %+v", i, in.GetID(),
				in.GetAccount().GetLogin(), in.GetRepositorySelection(), in.GetAppID(), in.GetAccessTokensURL(), w)
		}
	}
	if in := got[1]; in.GetTargetType() != "Organization" || in.GetTargetID() != in.GetAccount().GetID() || in.GetAccount().GetType() != "Organization" {
		t.Errorf("north's target %q %d, account %+v", in.GetTargetType(), in.GetTargetID(), in.GetAccount())
	}
}

func TestInstallationsAreFoundByIDAndRepository(t *testing.T) {
	ctx := context.Background()
	m := newMulti(t, Options{})
	in, _, err := m.jwt.Apps.GetInstallation(ctx, m.south)
	if err != nil || in.GetID() != m.south || in.GetAccount().GetLogin() != "south" || in.GetRepositorySelection() != "selected" {
		t.Errorf("GET /app/installations/%d = %+v, %v", m.south, in, err)
	}
	if _, _, err := m.jwt.Apps.GetInstallation(ctx, 999); status(err) != http.StatusNotFound {
		t.Errorf("unknown installation: %v, want 404", err)
	}
	covering := map[string]int64{"acme/gitops": m.def, "north/api": m.north, "north/web": m.north,
		"south/svc": m.south, "south/db": m.def}
	for full, want := range covering {
		o, n, _ := strings.Cut(full, "/")
		in, _, err := m.jwt.Apps.FindRepositoryInstallation(ctx, o, n)
		if err != nil || in.GetID() != want {
			t.Errorf("GET /repos/%s/installation = %d, %v; want %d", full, in.GetID(), err, want)
		}
		if got := m.s.InstallationOf(o, n); got != want {
			t.Errorf("InstallationOf(%s) = %d, want %d", full, got, want)
		}
	}
	if _, _, err := m.jwt.Apps.FindRepositoryInstallation(ctx, "north", "missing"); status(err) != http.StatusNotFound {
		t.Errorf("installation of a missing repository: %v, want 404", err)
	}
	// With the default installation gone, south/db is covered by none.
	m.s.DeleteInstallation(m.def)
	if _, _, err := m.jwt.Apps.FindRepositoryInstallation(ctx, "south", "db"); status(err) != http.StatusNotFound {
		t.Errorf("installation of an uncovered repository: %v, want 404", err)
	}
	if got := m.s.InstallationOf("acme", "gitops"); got != 0 {
		t.Errorf("InstallationOf(acme/gitops) without the default = %d, want 0", got)
	}
}

func TestInstallationTokensReachOnlyTheirRepositories(t *testing.T) {
	ctx := context.Background()
	m := newMulti(t, Options{})
	reach := map[int64][]string{m.def: {"acme/gitops", "south/db"}, m.north: {"north/api", "north/web"}, m.south: {"south/svc"}}
	all := []string{"acme/gitops", "north/api", "north/web", "south/svc", "south/db"}
	for id, repos := range reach {
		tok := m.token(t, id)
		if got := fullNames(tok.Repositories); !slices.Equal(got, repos) {
			t.Errorf("token of %d lists %v, want %v", id, got, repos)
		}
		c := m.tokenClient(t, tok.GetToken())
		for _, full := range all {
			o, n, _ := strings.Cut(full, "/")
			_, _, err := c.Repositories.Get(ctx, o, n)
			_, _, refErr := c.Git.GetRef(ctx, o, n, "heads/main")
			if slices.Contains(repos, full) {
				if err != nil || refErr != nil {
					t.Errorf("installation %d on its %s: %v, %v", id, full, err, refErr)
				}
				continue
			}
			var er *github.ErrorResponse
			if !errors.As(err, &er) || er.Response.StatusCode != http.StatusNotFound || er.Message != "Not Found" || status(refErr) != http.StatusNotFound {
				t.Errorf("installation %d on %s: %v, %v; want 404 Not Found", id, full, err, refErr)
			}
		}
	}
	// ghinstallation's own exchange scopes the same way.
	if _, _, err := m.installClient(t, m.south).Repositories.Get(ctx, "south", "db"); status(err) != http.StatusNotFound {
		t.Errorf("south's client on south/db: %v, want 404", err)
	}
	if _, _, err := m.installClient(t, m.south).Repositories.Get(ctx, "south", "svc"); err != nil {
		t.Errorf("south's client on south/svc: %v", err)
	}
	if _, _, err := m.jwt.Apps.CreateInstallationToken(ctx, 999, nil); status(err) != http.StatusNotFound {
		t.Errorf("token of an unknown installation: %v, want 404", err)
	}
	// A person's token is not scoped by installations.
	if _, _, err := m.userClient(t, "alice").Repositories.Get(ctx, "south", "db"); err != nil {
		t.Errorf("alice on south/db: %v", err)
	}
}

func TestInstallationTokensOverSmartHTTP(t *testing.T) {
	m := newMulti(t, Options{})
	tok := m.token(t, m.north).GetToken()
	tmp := t.TempDir()
	out, err := gitErr(tmp, "ls-remote", gitURL(t, m.s, "north", "api", tok))
	if err != nil || !strings.Contains(out, "refs/heads/main") {
		t.Fatalf("ls-remote north/api with north's token: %v %s", err, out)
	}
	for _, full := range []string{"south/svc", "acme/gitops"} {
		o, n, _ := strings.Cut(full, "/")
		out, err := gitErr(tmp, "ls-remote", gitURL(t, m.s, o, n, tok))
		if err == nil || !strings.Contains(out, "not found") {
			t.Errorf("ls-remote %s with north's token: %v %s; want repository not found", full, err, out)
		}
	}
	dir := filepath.Join(tmp, "clone")
	git(t, tmp, "clone", "--quiet", gitURL(t, m.s, "north", "api", tok), dir)
	writeFiles(t, dir, map[string]string{"pushed.txt": "north\n"})
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "--quiet", "-m", "north push")
	if out, err := gitErr(dir, "push", "--quiet", "origin", "HEAD:refs/heads/ok"); err != nil {
		t.Fatalf("push to north/api with north's token: %v %s", err, out)
	}
	out, err = gitErr(dir, "push", "--quiet", gitURL(t, m.s, "south", "svc", tok), "HEAD:refs/heads/stolen")
	if err == nil || !strings.Contains(out, "not found") {
		t.Errorf("push to south/svc with north's token: %v %s; want repository not found", err, out)
	}
	if out, err := gitErr(m.s.RepoPath("south", "svc"), "rev-parse", "--verify", "--quiet", "refs/heads/stolen"); err == nil {
		t.Errorf("south/svc holds the refused push: %s", out)
	}
	if git(t, m.s.RepoPath("north", "api"), "rev-parse", "ok") != git(t, dir, "rev-parse", "HEAD") {
		t.Error("north/api does not hold the pushed commit")
	}
	refused := 0
	for _, c := range m.s.Calls() {
		if strings.HasPrefix(c.Route, "GIT ") && c.Status == http.StatusNotFound && c.Token == TokenInstallation {
			refused++
		}
	}
	if refused != 3 {
		t.Errorf("%d git requests refused with 404, want 3 (two ls-remotes, one push)", refused)
	}
}
