package github

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v60/github"
)

// App is canarybot as a GitHub App serving every installation: it lists
// the installations (authenticated as the App, with its JWT) and keeps one
// Session per installation, whose token reaches that installation's
// repositories only. Tokens are never shared across installations.
type App struct {
	auth  Auth
	tr    *Transport
	apps  *ghinstallation.AppsTransport
	rest  *gh.Client // as the App itself
	Login string     // <app-slug>[bot]

	mu       sync.Mutex
	sessions map[int64]*Session
}

// Installation is one account the App is installed on.
type Installation struct {
	ID      int64
	Account string
}

// Repository is one repository an installation reaches.
type Repository struct {
	Owner, Name   string
	DefaultBranch string
	// CloneURL is the https URL git fetches and pushes.
	CloneURL string
	Archived bool
}

// FullName is OWNER/NAME.
func (r Repository) FullName() string { return r.Owner + "/" + r.Name }

// NewApp authenticates as the App (a.InstallationID is not used) and
// learns its login. tr sits under the authentication, so that every API
// call is counted and rate-limited.
func NewApp(ctx context.Context, a Auth, tr *Transport) (*App, error) {
	var errs []error
	if a.AppID <= 0 {
		errs = append(errs, errors.New("GitHub App ID must be a positive number"))
	}
	if len(a.PrivateKey) == 0 {
		errs = append(errs, errors.New("GitHub App private key is empty"))
	}
	if a.Token != "" {
		errs = append(errs, errors.New("a GitHub App serving its installations takes no token"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	apps, err := ghinstallation.NewAppsTransport(tr, a.AppID, a.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("read GitHub App private key: %w", err)
	}
	apps.BaseURL = strings.TrimSuffix(a.apiURL(), "/")
	rest, err := newREST(a.apiURL(), apps)
	if err != nil {
		return nil, err
	}
	me, _, err := rest.Apps.Get(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("read GitHub App %d (is the private key the App's?): %w", a.AppID, err)
	}
	return &App{auth: a, tr: tr, apps: apps, rest: rest, Login: me.GetSlug() + "[bot]", sessions: map[int64]*Session{}}, nil
}

// Installations lists every installation of the App.
func (a *App) Installations(ctx context.Context) ([]Installation, error) {
	var out []Installation
	opts := &gh.ListOptions{PerPage: 100}
	for {
		page, resp, err := a.rest.Apps.ListInstallations(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list installations of App %d: %w", a.auth.AppID, err)
		}
		for _, in := range page {
			if in.SuspendedAt != nil {
				continue // a suspended installation's tokens do not work
			}
			out = append(out, Installation{ID: in.GetID(), Account: in.GetAccount().GetLogin()})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// Session returns installation id's session, connecting on first use.
func (a *App) Session(ctx context.Context, id int64) (*Session, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.sessions[id]; ok {
		return s, nil
	}
	inst := ghinstallation.NewFromAppsTransport(a.apps, id)
	if _, err := inst.Token(ctx); err != nil {
		return nil, fmt.Errorf("get a token for installation %d of App %d (is the App installed there?): %w", id, a.auth.AppID, err)
	}
	rest, err := newREST(a.auth.apiURL(), inst)
	if err != nil {
		return nil, err
	}
	s := &Session{REST: rest, GitToken: inst.Token, Login: a.Login, installation: id}
	a.sessions[id] = s
	return s, nil
}

// Forget drops installation id's session (the App was uninstalled there).
func (a *App) Forget(id int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, id)
}

// Repositories lists the repositories the session reaches: an
// installation's, or, for a token, those given (the token's user may
// reach far more than canarybot should serve).
func (s *Session) Repositories(ctx context.Context) ([]Repository, error) {
	var out []Repository
	opts := &gh.ListOptions{PerPage: 100}
	for {
		page, resp, err := s.REST.Apps.ListRepos(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list repositories of installation %d: %w", s.installation, err)
		}
		for _, r := range page.Repositories {
			out = append(out, repository(r))
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// Repository reads one repository's metadata.
func (s *Session) Repository(ctx context.Context, owner, name string) (Repository, error) {
	r, _, err := s.REST.Repositories.Get(ctx, owner, name)
	if err != nil {
		return Repository{}, fmt.Errorf("read repository %s/%s: %w", owner, name, err)
	}
	return repository(r), nil
}

func repository(r *gh.Repository) Repository {
	return Repository{Owner: r.GetOwner().GetLogin(), Name: r.GetName(), DefaultBranch: r.GetDefaultBranch(),
		CloneURL: r.GetCloneURL(), Archived: r.GetArchived()}
}
