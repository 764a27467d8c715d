// Package gitops is canarybot's Git adapter. It implements canary.Repo with
// go-git against any remote (file://, a local path, or http(s):// with a
// token), in the shape of Flux's image automation: check out the branch
// head, let the caller compute a change, then commit and push it, retrying
// on a newer head when the push is not a fast-forward. It never
// force-pushes.
//
// Reader is the read-only half (history, trailers, files at a revision);
// it can live entirely in memory for `canarybot status --repo URL`. Repo
// embeds a Reader over a persisted working clone and adds the writer.
package gitops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Defaults used when Options leaves a field empty.
const (
	DefaultBranch      = "main"
	DefaultAuthorName  = "canarybot"
	DefaultAuthorEmail = "canarybot@users.noreply.github.com"
	// TokenUsername is the basic-auth user name sent with a token, as
	// GitHub expects for installation and personal access tokens.
	TokenUsername = "x-access-token"
	// remoteName is the only remote canarybot uses.
	remoteName = "origin"
)

// Options configures Open and OpenReadOnly.
type Options struct {
	// URL is the remote: file://, a plain local path, or http(s)://.
	URL string
	// Branch is the branch to read and write; "main" when empty.
	Branch string
	// Dir is the working clone, kept between runs: reused when it holds a
	// clone of URL, cloned into when absent or empty. Open requires it;
	// OpenReadOnly ignores it.
	Dir string
	// Token, when set, is sent over http(s) as basic auth with user
	// TokenUsername. It is never sent to other transports.
	Token string
	// TokenSource, when set, overrides Token and is called before each
	// network operation, so short-lived tokens (GitHub App installation
	// tokens) can be refreshed.
	TokenSource func(ctx context.Context) (string, error)
	// AuthorName and AuthorEmail sign canarybot's commits.
	AuthorName  string
	AuthorEmail string
	// Logger receives debug and retry logs; discarded when nil.
	Logger *slog.Logger
	// Clock dates commits and times retry backoff; the wall clock when nil.
	Clock canary.Clock
	// Retry bounds the non-fast-forward retry loop.
	Retry Retry
}

// Retry is the exponential backoff between push attempts.
type Retry struct {
	// Attempts is the most push attempts per Transact; 6 when zero.
	Attempts int
	// Initial is the first wait; 200ms when zero. It doubles each retry.
	Initial time.Duration
	// Max caps the wait; 5s when zero.
	Max time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if strings.TrimSpace(o.URL) == "" {
		return o, errors.New("gitops options: URL is required")
	}
	if _, err := transport.NewEndpoint(o.URL); err != nil {
		return o, fmt.Errorf("gitops options: parse URL: %w", redactErr(err))
	}
	if o.Branch == "" {
		o.Branch = DefaultBranch
	}
	if err := plumbing.NewBranchReferenceName(o.Branch).Validate(); err != nil {
		return o, fmt.Errorf("gitops options: branch %q: %w", o.Branch, err)
	}
	if o.AuthorName == "" {
		o.AuthorName = DefaultAuthorName
	}
	if o.AuthorEmail == "" {
		o.AuthorEmail = DefaultAuthorEmail
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Clock == nil {
		o.Clock = canary.SystemClock{}
	}
	if o.Retry.Attempts <= 0 {
		o.Retry.Attempts = 6
	}
	if o.Retry.Initial <= 0 {
		o.Retry.Initial = 200 * time.Millisecond
	}
	if o.Retry.Max <= 0 {
		o.Retry.Max = 5 * time.Second
	}
	return o, nil
}

// auth returns the auth method for one network operation: basic auth with
// the token for http(s) remotes, nil otherwise.
func (o Options) auth(ctx context.Context) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(o.URL)
	if err != nil {
		return nil, fmt.Errorf("parse URL: %w", redactErr(err))
	}
	if ep.Protocol != "http" && ep.Protocol != "https" {
		return nil, nil
	}
	token := o.Token
	if o.TokenSource != nil {
		if token, err = o.TokenSource(ctx); err != nil {
			return nil, fmt.Errorf("get git token: %w", err)
		}
	}
	if token == "" {
		return nil, nil
	}
	return &githttp.BasicAuth{Username: TokenUsername, Password: token}, nil
}

// sleep waits d on clock, or returns early with the context's error.
func sleep(ctx context.Context, clock canary.Clock, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-clock.After(d):
		return nil
	}
}

// nextDelay doubles d, capped at r.Max.
func (r Retry) nextDelay(d time.Duration) time.Duration {
	return min(2*d, r.Max)
}
