package webhook

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-github/v60/github"
)

func ghRepos(names ...string) []*github.Repository {
	var out []*github.Repository
	for _, n := range names {
		out = append(out, &github.Repository{FullName: github.String(n)})
	}
	return out
}

func TestParseInstallationEvents(t *testing.T) {
	inst := &github.Installation{ID: github.Int64(7), Account: &github.User{Login: github.String("acme")}}
	cases := []struct {
		name, kind, body string
		want             *Repos
		err              bool
		ignored          bool
	}{
		{"installed", "installation", marshal(&github.InstallationEvent{Action: github.String("created"), Installation: inst,
			Repositories: ghRepos("acme/gitops", "acme/ml")}),
			&Repos{Action: "created", Account: "acme", Added: []string{"acme/gitops", "acme/ml"}}, false, false},
		{"uninstalled", "installation", marshal(&github.InstallationEvent{Action: github.String("deleted"), Installation: inst,
			Repositories: ghRepos("acme/gitops")}),
			&Repos{Action: "deleted", Account: "acme", Removed: []string{"acme/gitops"}}, false, false},
		{"suspended is removal", "installation", marshal(&github.InstallationEvent{Action: github.String("suspend"), Installation: inst}),
			&Repos{Action: "deleted", Account: "acme", Removed: []string{}}, false, false},
		{"repos added", "installation_repositories", marshal(&github.InstallationRepositoriesEvent{Action: github.String("added"),
			Installation: inst, RepositoriesAdded: ghRepos("acme/new")}),
			&Repos{Action: "added", Account: "acme", Added: []string{"acme/new"}, Removed: []string{}}, false, false},
		{"repos removed", "installation_repositories", marshal(&github.InstallationRepositoriesEvent{Action: github.String("removed"),
			Installation: inst, RepositoriesRemoved: ghRepos("acme/old")}),
			&Repos{Action: "removed", Account: "acme", Added: []string{}, Removed: []string{"acme/old"}}, false, false},
		{"no installation id", "installation", marshal(&github.InstallationEvent{Action: github.String("created")}), nil, true, false},
		{"bad repository name", "installation_repositories", marshal(&github.InstallationRepositoriesEvent{Action: github.String("added"),
			Installation: inst, RepositoriesAdded: ghRepos("no-owner")}), nil, true, false},
		{"rename ignored", "installation", marshal(&github.InstallationEvent{Action: github.String("new_name"), Installation: inst}), nil, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := Parse(c.kind, []byte(c.body))
			switch {
			case c.ignored:
				if !errors.Is(err, ErrIgnored) {
					t.Fatalf("err = %v, want ErrIgnored", err)
				}
				return
			case c.err:
				if err == nil || errors.Is(err, ErrIgnored) {
					t.Fatalf("err = %v, want a parse error", err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if ev.Installation != 7 || ev.Repos == nil {
				t.Fatalf("event = %+v", ev)
			}
			r := ev.Repos
			if r.Action != c.want.Action || r.Account != c.want.Account || !slices.Equal(r.Added, c.want.Added) ||
				!slices.Equal(r.Removed, c.want.Removed) {
				t.Fatalf("repos = %+v, want %+v", r, c.want)
			}
		})
	}
}

func TestParsePush(t *testing.T) {
	push := &github.PushEvent{Ref: github.String("refs/heads/main"), After: github.String("abc"),
		Repo:         &github.PushEventRepository{Name: github.String("gitops"), Owner: &github.User{Login: github.String("acme")}},
		Installation: &github.Installation{ID: github.Int64(7)},
		Commits: []*github.HeadCommit{
			{Added: []string{".canarybot/plans/new.yaml"}, Modified: []string{"README.md"}},
			{Modified: []string{"README.md"}, Removed: []string{"old.txt"}},
		}}
	ev, err := Parse("push", []byte(marshal(push)))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != KindPush || ev.Owner != "acme" || ev.Repo != "gitops" || ev.Installation != 7 {
		t.Fatalf("event = %+v", ev)
	}
	want := []string{".canarybot/plans/new.yaml", "README.md", "old.txt"}
	if ev.Push.Branch != "main" || ev.Push.Head != "abc" || !slices.Equal(ev.Push.Paths, want) || ev.Push.Truncated {
		t.Fatalf("push = %+v", ev.Push)
	}
	push.Ref = github.String("refs/tags/v1")
	if _, err := Parse("push", []byte(marshal(push))); !errors.Is(err, ErrIgnored) {
		t.Fatalf("tag push: err = %v, want ErrIgnored", err)
	}
}
