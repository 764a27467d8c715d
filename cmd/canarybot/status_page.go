package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/appserver"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/github"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/redact"
	"github.com/canarybot/canarybot/pkg/statuspage"
)

// registerStatusPage adds the status page (GET /, /rollouts/{plan},
// /api/v1/rollouts, …) over repos to mux.
func registerStatusPage(mux *http.ServeMux, log *slog.Logger, repos func() []statuspage.Repo) error {
	page, err := statuspage.New(statuspage.Config{Repos: repos, Clock: canary.SystemClock{}, Log: log})
	if err != nil {
		return err
	}
	page.Register(mux)
	return nil
}

// oneRepo is a status page's list of one repository.
func oneRepo(name string, git statuspage.Source, web string) func() []statuspage.Repo {
	return func() []statuspage.Repo { return []statuspage.Repo{{Name: name, Git: git, Web: web}} }
}

// githubWeb is the web page of repository OWNER/NAME on the GitHub whose
// REST API is apiURL: github.com for the public API, else the Enterprise
// host (https://HOST/api/v3/ serves https://HOST/OWNER/NAME).
func githubWeb(apiURL, full string) string {
	if apiURL == "" || apiURL == github.DefaultAPIURL {
		return "https://github.com/" + full
	}
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/" + full
}

// remoteWeb is the github.com page of a git remote URL
// (https://github.com/OWNER/NAME.git, with or without credentials), or ""
// for any other remote.
func remoteWeb(remote string) string {
	u, err := url.Parse(remote)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || !strings.EqualFold(u.Hostname(), "github.com") {
		return ""
	}
	parts := strings.Split(strings.Trim(strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git"), "/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return ""
	}
	return "https://github.com/" + parts[0] + "/" + parts[1]
}

// statusFetchEvery is how often `status --serve` fetches the branch.
const statusFetchEvery = 30 * time.Second

// serveStatus serves the status page of the read-only clone r on o.serve
// until ctx ends, fetching the branch every o.fetchEvery so the page
// follows the bot. It prints the page's address on out.
func (o *statusOptions) serveStatus(ctx context.Context, r *gitops.Reader, clock canary.Clock, log *slog.Logger, out io.Writer) error {
	if o.fetchEvery <= 0 {
		return fmt.Errorf("--fetch-interval %s: must be positive", o.fetchEvery)
	}
	mux := http.NewServeMux()
	if err := registerStatusPage(mux, log, oneRepo(redact.URL(o.repo), r, remoteWeb(o.repo))); err != nil {
		return err
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	ln, err := net.Listen("tcp", o.serve)
	if err != nil {
		return fmt.Errorf("--serve %s: %w", o.serve, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(out, "serving the status page of %s on http://%s/\n", redact.URL(o.repo), ln.Addr())
	for {
		select {
		case <-ctx.Done():
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shut)
			return ctx.Err()
		case err := <-done:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("status page: %w", err)
		case <-clock.After(o.fetchEvery):
			if _, err := r.Fetch(ctx); err != nil && ctx.Err() == nil {
				log.Warn("status page: fetch failed; showing the last fetched head", "repo", redact.URL(o.repo), "err", err)
			}
		}
	}
}

// servedRepos lists, for the status page, the repositories srv serves
// now, each read from its clone.
func (o *serveOptions) servedRepos(srv *appserver.Server) func() []statuspage.Repo {
	return func() []statuspage.Repo {
		var out []statuspage.Repo
		for _, full := range srv.Served() {
			if local := srv.Local(full); local != nil {
				out = append(out, statuspage.Repo{Name: full, Git: local, Web: githubWeb(o.apiURL, full)})
			}
		}
		return out
	}
}

// reconciledRepos lists, for the status page, the clones reconcile keeps,
// by their credential-free names, linked to github.com where the remote
// is there.
func reconciledRepos(repos map[string]*gitops.Repo, urls []string) func() []statuspage.Repo {
	var out []statuspage.Repo
	for _, u := range urls {
		if r := repos[redact.URL(u)]; r != nil {
			out = append(out, statuspage.Repo{Name: redact.URL(u), Git: r, Web: remoteWeb(u)})
		}
	}
	return func() []statuspage.Repo { return out }
}
