package webhook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v60/github"
)

// installationEvent is the App installed on (created) or removed from
// (deleted) an account. Suspension is treated as removal, and lifting it
// as a new installation: a suspended installation's tokens do not work.
func installationEvent(e *github.InstallationEvent) (Event, error) {
	in := e.GetInstallation()
	ev := Event{Kind: KindInstallation, Installation: in.GetID(), Sender: e.GetSender().GetLogin()}
	if ev.Installation == 0 {
		return ev, errors.New("installation payload has no installation id")
	}
	r := &Repos{Action: e.GetAction(), Account: in.GetAccount().GetLogin()}
	names, err := fullNames(e.Repositories)
	if err != nil {
		return ev, fmt.Errorf("installation payload: %w", err)
	}
	switch r.Action {
	case "created", "unsuspend", "new_permissions_accepted":
		r.Action, r.Added = "created", names
	case "deleted", "suspend":
		r.Action, r.Removed = "deleted", names
	default:
		return Event{}, fmt.Errorf("%w: installation action %q", ErrIgnored, r.Action)
	}
	ev.Repos = r
	return ev, nil
}

func installationReposEvent(e *github.InstallationRepositoriesEvent) (Event, error) {
	in := e.GetInstallation()
	ev := Event{Kind: KindInstallationRepos, Installation: in.GetID(), Sender: e.GetSender().GetLogin()}
	if ev.Installation == 0 {
		return ev, errors.New("installation_repositories payload has no installation id")
	}
	r := &Repos{Action: e.GetAction(), Account: in.GetAccount().GetLogin()}
	if r.Action != "added" && r.Action != "removed" {
		return Event{}, fmt.Errorf("%w: installation_repositories action %q", ErrIgnored, r.Action)
	}
	var err1, err2 error
	r.Added, err1 = fullNames(e.RepositoriesAdded)
	r.Removed, err2 = fullNames(e.RepositoriesRemoved)
	if err := errors.Join(err1, err2); err != nil {
		return ev, fmt.Errorf("installation_repositories payload: %w", err)
	}
	ev.Repos = r
	return ev, nil
}

// fullNames are the repositories as OWNER/NAME.
func fullNames(repos []*github.Repository) ([]string, error) {
	out := make([]string, 0, len(repos))
	for _, r := range repos {
		n := r.GetFullName()
		if n == "" && r.GetOwner().GetLogin() != "" {
			n = r.GetOwner().GetLogin() + "/" + r.GetName()
		}
		if owner, name, ok := strings.Cut(n, "/"); !ok || owner == "" || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("repository %q is not OWNER/NAME", n)
		}
		out = append(out, n)
	}
	return out, nil
}

func pushEvent(e *github.PushEvent) (Event, error) {
	ev := Event{Kind: KindPush, Installation: e.GetInstallation().GetID(), Sender: e.GetSender().GetLogin()}
	repo := e.GetRepo()
	ev.Owner, ev.Repo = repo.GetOwner().GetLogin(), repo.GetName()
	if ev.Owner == "" {
		ev.Owner = repo.GetOwner().GetName()
	}
	if ev.Owner == "" || ev.Repo == "" {
		return ev, errors.New("push payload has no repository owner and name")
	}
	branch, ok := strings.CutPrefix(e.GetRef(), "refs/heads/")
	if !ok || e.GetDeleted() {
		return Event{}, fmt.Errorf("%w: push to %q", ErrIgnored, e.GetRef())
	}
	p := &Push{Branch: branch, Head: e.GetAfter(), Truncated: len(e.Commits) >= 20 || e.GetForced()}
	seen := map[string]bool{}
	for _, c := range e.Commits {
		for _, list := range [][]string{c.Added, c.Modified, c.Removed} {
			for _, f := range list {
				if !seen[f] {
					seen[f] = true
					p.Paths = append(p.Paths, f)
				}
			}
		}
	}
	ev.Push = p
	return ev, nil
}
