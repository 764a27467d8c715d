package fakegithub

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

func TestInstallationRepositoriesArePaginated(t *testing.T) {
	ctx := context.Background()
	m := newMulti(t, Options{})
	north := m.installClient(t, m.north)
	var names []string
	opts := &github.ListOptions{PerPage: 1}
	for pages := 1; ; pages++ {
		list, resp, err := north.Apps.ListRepos(ctx, opts)
		if err != nil || list.GetTotalCount() != 2 || len(list.Repositories) != 1 || pages > 2 {
			t.Fatalf("page %d: %+v, %v; want 1 of 2 repositories", pages, list, err)
		}
		names = append(names, list.Repositories[0].GetFullName())
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if !slices.Equal(names, []string{"north/api", "north/web"}) {
		t.Errorf("north's repositories page by page: %v", names)
	}
	tok := m.token(t, m.south).GetToken()
	resp, body := get(t, m.s, "/installation/repositories", tok, "")
	var raw struct {
		TotalCount          int                  `json:"total_count"`
		RepositorySelection string               `json:"repository_selection"`
		Repositories        []*github.Repository `json:"repositories"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil || resp.StatusCode != http.StatusOK || raw.TotalCount != 1 ||
		raw.RepositorySelection != "selected" || !slices.Equal(fullNames(raw.Repositories), []string{"south/svc"}) {
		t.Errorf("south's repositories: %d %s (%v)", resp.StatusCode, body, err)
	}
	if resp, body := get(t, m.s, "/installation/repositories", m.tok["alice"], ""); resp.StatusCode != http.StatusForbidden ||
		!strings.Contains(body, "installation access token") {
		t.Errorf("/installation/repositories with a personal token: %d %s, want 403", resp.StatusCode, body)
	}

	// South's selection changes under its existing token.
	south := m.tokenClient(t, tok)
	m.s.AddInstallationRepos(m.south, "db")
	list, _, err := south.Apps.ListRepos(ctx, nil)
	if err != nil || !slices.Equal(fullNames(list.Repositories), []string{"south/svc", "south/db"}) {
		t.Fatalf("south's repositories after adding db: %+v, %v", list, err)
	}
	if _, _, err := south.Repositories.Get(ctx, "south", "db"); err != nil {
		t.Errorf("south's token on the added south/db: %v", err)
	}
	m.s.RemoveInstallationRepos(m.south, "svc")
	if _, _, err := south.Repositories.Get(ctx, "south", "svc"); status(err) != http.StatusNotFound {
		t.Errorf("south's token on the removed south/svc: %v, want 404", err)
	}
	if got := m.s.InstallationOf("south", "svc"); got != m.def {
		t.Errorf("south/svc after its removal is covered by %d, want the default %d", got, m.def)
	}
}

func TestDeletedInstallationsTokensAreRefused(t *testing.T) {
	ctx := context.Background()
	m := newMulti(t, Options{})
	north, south := m.token(t, m.north).GetToken(), m.token(t, m.south).GetToken()
	c := m.tokenClient(t, north)
	if _, _, err := c.Repositories.Get(ctx, "north", "api"); err != nil {
		t.Fatalf("north's token before the deletion: %v", err)
	}
	m.s.DeleteInstallation(m.north)

	_, _, err := c.Repositories.Get(ctx, "north", "api")
	if status(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "Bad credentials") {
		t.Errorf("north's token after the deletion: %v, want 401 Bad credentials", err)
	}
	if out, err := gitErr(t.TempDir(), "ls-remote", gitURL(t, m.s, "north", "api", north)); err == nil ||
		!strings.Contains(out, "Authentication failed") {
		t.Errorf("ls-remote with north's token after the deletion: %v %s", err, out)
	}
	if _, _, err := m.jwt.Apps.CreateInstallationToken(ctx, m.north, nil); status(err) != http.StatusNotFound {
		t.Errorf("token of the deleted installation: %v, want 404", err)
	}
	if _, _, err := m.jwt.Apps.GetInstallation(ctx, m.north); status(err) != http.StatusNotFound {
		t.Errorf("GET the deleted installation: %v, want 404", err)
	}
	if _, _, err := m.installClient(t, m.north).Repositories.Get(ctx, "north", "api"); err == nil {
		t.Error("ghinstallation got a token of the deleted installation")
	}
	insts, _, err := m.jwt.Apps.ListInstallations(ctx, nil)
	if err != nil || len(insts) != 2 || insts[0].GetID() != m.def || insts[1].GetID() != m.south {
		t.Errorf("installations after the deletion: %v, %v", insts, err)
	}
	// North's repositories fall to the default installation; south is untouched.
	if _, _, err := m.installClient(t, m.def).Repositories.Get(ctx, "north", "api"); err != nil {
		t.Errorf("the default installation on north/api: %v", err)
	}
	if _, _, err := m.tokenClient(t, south).Repositories.Get(ctx, "south", "svc"); err != nil {
		t.Errorf("south's token after north's deletion: %v", err)
	}
}

// parsedDeliveries parses every delivery so far with go-github, or as
// registryPackageEvent, which go-github v60 does not know.
func parsedDeliveries(t *testing.T, s *Server) ([]Delivery, []any) {
	t.Helper()
	wait(t, s)
	ds := s.Deliveries()
	evs := make([]any, 0, len(ds))
	for _, d := range ds {
		var ev any = &registryPackageEvent{}
		var err error
		if d.Event == "registry_package" {
			err = json.Unmarshal(d.Body, ev)
		} else {
			ev, err = github.ParseWebHook(d.Event, d.Body)
		}
		if err != nil {
			t.Fatalf("parse %s delivery: %v\n%s", d.Event, err, d.Body)
		}
		evs = append(evs, ev)
	}
	return ds, evs
}

func TestInstallationLifecycleWebhooks(t *testing.T) {
	m := newMulti(t, Options{})
	m.s.AddInstallationRepos(m.south, "db", "svc") // svc is already there
	m.s.RemoveInstallationRepos(m.north, "web")
	m.s.DeleteInstallation(m.south)
	ds, evs := parsedDeliveries(t, m.s)
	type want struct {
		event, action, selection string
		inst                     int64
		repos                    []string
	}
	wants := []want{
		{"installation", "created", "all", m.north, []string{"north/api", "north/web"}},
		{"installation", "created", "selected", m.south, []string{"south/svc"}},
		{"installation_repositories", "added", "selected", m.south, []string{"south/db"}},
		{"installation_repositories", "removed", "selected", m.north, []string{"north/web"}},
		{"installation", "deleted", "selected", m.south, []string{"south/svc", "south/db"}},
	}
	if len(ds) != len(wants) {
		var got []string
		for _, d := range ds {
			got = append(got, d.Event+" "+d.Action)
		}
		t.Fatalf("deliveries %q, want %d", got, len(wants))
	}
	for i, w := range wants {
		var in *github.Installation
		var repos []*github.Repository
		var selection, action string
		switch ev := evs[i].(type) {
		case *github.InstallationEvent:
			in, repos, selection, action = ev.GetInstallation(), ev.Repositories, ev.GetInstallation().GetRepositorySelection(), ev.GetAction()
		case *github.InstallationRepositoriesEvent:
			in, selection, action = ev.GetInstallation(), ev.GetRepositorySelection(), ev.GetAction()
			repos = append(ev.RepositoriesAdded, ev.RepositoriesRemoved...)
			if (w.action == "added") != (len(ev.RepositoriesAdded) > 0) {
				t.Errorf("delivery %d: added %v removed %v for action %s", i, ev.RepositoriesAdded, ev.RepositoriesRemoved, w.action)
			}
		}
		if ds[i].Event != w.event || ds[i].Action != w.action || action != w.action || in.GetID() != w.inst ||
			selection != w.selection || !slices.Equal(fullNames(repos), w.repos) || in.GetAccount().GetLogin() == "" {
			t.Errorf("delivery %d: %s %s installation %d selection %q repos %v; want %+v", i, ds[i].Event, action,
				in.GetID(), selection, fullNames(repos), w)
		}
	}
	if a, w := m.s.InstallationOf("north", "api"), m.s.InstallationOf("north", "web"); a != m.north || w != m.def {
		t.Errorf("after removing north/web: north/api in %d, north/web in %d; want %d, %d", a, w, m.north, m.def)
	}
	checkHookRepoShape(t, ds[0].Body, "repositories")
	checkHookRepoShape(t, ds[2].Body, "repositories_added")
}

// checkHookRepoShape checks that the repositories under key carry
// exactly GitHub's fields for installation events.
func checkHookRepoShape(t *testing.T, body []byte, key string) {
	t.Helper()
	var raw map[string]json.RawMessage
	var repos []map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw[key], &repos); err != nil || len(repos) == 0 {
		t.Fatalf("%s: %v %s", key, err, raw[key])
	}
	for _, r := range repos {
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"full_name", "id", "name", "node_id", "private"}) || r["private"] != true {
			t.Errorf("%s entry %v, want id, node_id, name, full_name, private", key, r)
		}
	}
	if _, ok := raw["sender"]; !ok {
		t.Errorf("no sender in %s", body)
	}
}

func TestRepositoryWebhooksCarryTheCoveringInstallation(t *testing.T) {
	ctx := context.Background()
	m := newMulti(t, Options{})
	head := git(t, m.s.RepoPath("north", "api"), "rev-parse", "main")
	north := m.installClient(t, m.north)
	if _, _, err := north.Checks.CreateCheckRun(ctx, "north", "api", github.CreateCheckRunOptions{Name: "canary/gates", HeadSHA: head}); err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + strings.Repeat("a", 64)
	publish := func(owner, pkg string) {
		if err := m.s.PublishPackage(owner, pkg, "v1", digest); err != nil {
			t.Fatal(err)
		}
	}
	publish("south", "svc")
	publish("south", "db")
	m.s.DeleteInstallation(m.def)
	publish("south", "db") // now covered by none: not delivered
	_, evs := parsedDeliveries(t, m.s)
	var got []string
	for _, ev := range evs {
		switch ev := ev.(type) {
		case *github.CheckRunEvent:
			got = append(got, ev.GetRepo().GetFullName()+"="+strconv.FormatInt(ev.GetInstallation().GetID(), 10))
		case *registryPackageEvent:
			got = append(got, ev.Repository.GetFullName()+"="+strconv.FormatInt(ev.Installation.GetID(), 10))
		}
	}
	want := []string{"north/api=" + strconv.FormatInt(m.north, 10), "south/svc=" + strconv.FormatInt(m.south, 10), "south/db=" + strconv.FormatInt(m.def, 10)}
	if !slices.Equal(got, want) {
		t.Errorf("repository deliveries carry %v, want %v", got, want)
	}
}
