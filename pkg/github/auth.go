// Package github is canarybot's GitHub adapter: App authentication
// (ghinstallation, one client per installation, tokens refreshed before
// they expire), a transport that counts API calls, revalidates with ETags
// and waits out rate limits, and the pull-request flow — every transition
// published as a PR carrying its evidence and a check run, merged at once
// or after a reviewer approves — plus ChatOps commands.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v60/github"
)

// DefaultAPIURL is github.com's REST API.
const DefaultAPIURL = "https://api.github.com/"

// Auth says how canarybot authenticates: as a GitHub App installation
// (AppID, PrivateKey, InstallationID) or with a plain token for a single
// repository.
type Auth struct {
	// APIURL is the REST API base; DefaultAPIURL when empty. GitHub
	// Enterprise uses https://host/api/v3/.
	APIURL         string
	AppID          int64
	InstallationID int64
	// PrivateKey is the App's PEM-encoded RSA key.
	PrivateKey []byte
	Token      string
}

// Validate reports every problem with the settings at once.
func (a Auth) Validate() error {
	var errs []error
	app := a.AppID != 0 || a.InstallationID != 0 || len(a.PrivateKey) > 0
	switch {
	case app && a.Token != "":
		errs = append(errs, errors.New("give either a GitHub App (app ID, installation ID, private key) or a token, not both"))
	case app:
		if a.AppID <= 0 {
			errs = append(errs, errors.New("GitHub App ID must be a positive number"))
		}
		if a.InstallationID <= 0 {
			errs = append(errs, errors.New("GitHub App installation ID must be a positive number"))
		}
		if len(a.PrivateKey) == 0 {
			errs = append(errs, errors.New("GitHub App private key is empty"))
		}
	case a.Token == "":
		errs = append(errs, errors.New("no GitHub credentials: give a GitHub App (app ID, installation ID, private key) or a token"))
	}
	if a.APIURL != "" {
		if u, err := url.Parse(a.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("GitHub API URL %q must be an absolute http(s) URL", a.APIURL))
		}
	}
	return errors.Join(errs...)
}

func (a Auth) apiURL() string {
	u := a.APIURL
	if u == "" {
		u = DefaultAPIURL
	}
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u
}

// Session is one authenticated identity: a REST client, a token source for
// git over HTTPS, and the login GitHub shows for canarybot.
type Session struct {
	REST *gh.Client
	// GitToken returns a currently valid token for git over HTTPS (user
	// x-access-token); installation tokens are renewed a minute before
	// they expire.
	GitToken func(ctx context.Context) (string, error)
	// Login is canarybot's own login: <app-slug>[bot] for an App.
	Login string
	// installation is the App installation, 0 for a token.
	installation int64
}

// Installation is the session's App installation, 0 for a token.
func (s *Session) Installation() int64 { return s.installation }

// Connect authenticates and learns canarybot's login. tr sits under the
// authentication, so that every API call is counted and rate-limited.
func Connect(ctx context.Context, a Auth, tr *Transport) (*Session, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if a.Token != "" {
		return tokenSession(ctx, a, tr)
	}
	apps, err := ghinstallation.NewAppsTransport(tr, a.AppID, a.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("read GitHub App private key: %w", err)
	}
	apps.BaseURL = strings.TrimSuffix(a.apiURL(), "/")
	app, err := newREST(a.apiURL(), apps)
	if err != nil {
		return nil, err
	}
	me, _, err := app.Apps.Get(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("read GitHub App %d (is the private key the App's?): %w", a.AppID, err)
	}
	inst := ghinstallation.NewFromAppsTransport(apps, a.InstallationID)
	if _, err := inst.Token(ctx); err != nil {
		return nil, fmt.Errorf("get a token for installation %d of App %d (is the App installed there?): %w", a.InstallationID, a.AppID, err)
	}
	rest, err := newREST(a.apiURL(), inst)
	if err != nil {
		return nil, err
	}
	return &Session{REST: rest, GitToken: inst.Token, Login: me.GetSlug() + "[bot]", installation: a.InstallationID}, nil
}

func tokenSession(ctx context.Context, a Auth, tr *Transport) (*Session, error) {
	rest, err := newREST(a.apiURL(), &bearer{token: a.Token, base: tr})
	if err != nil {
		return nil, err
	}
	me, _, err := rest.Users.Get(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("read the token's user: %w", err)
	}
	token := a.Token
	return &Session{REST: rest, Login: me.GetLogin(),
		GitToken: func(context.Context) (string, error) { return token, nil }}, nil
}

func newREST(apiURL string, rt http.RoundTripper) (*gh.Client, error) {
	c := gh.NewClient(&http.Client{Transport: rt})
	if apiURL == DefaultAPIURL {
		return c, nil
	}
	u, err := url.Parse(apiURL)
	if err != nil {
		return nil, fmt.Errorf("GitHub API URL %q: %w", apiURL, err)
	}
	c.BaseURL = u
	return c, nil
}

// bearer adds a fixed token.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}
