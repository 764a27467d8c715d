// Package appserver is canarybot serving a whole organisation as one
// GitHub App: it lists the App's installations and their repositories,
// serves every repository that has a .canarybot/ directory (one clone
// each, its plans driven by a shared fleet.Fleet, each step a pull
// request through that repository's github.RepoBot), and routes every
// delivery of the App's one webhook URL to the plans it concerns.
// Installations and repositories come and go at run time
// (installation and installation_repositories deliveries, and a
// periodic rescan); each installation's token reaches only its own
// repositories.
//
// Nothing here must survive a crash: the served set is rebuilt from
// GitHub's lists, plans and rollouts from Git, unanswered ChatOps
// commands from the PRs' comments (the sweep), and webhook de-duplication
// and the ETag cache are only savings.
package appserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/fleet"
	"github.com/canarybot/canarybot/pkg/github"
	"github.com/canarybot/canarybot/pkg/github/webhook"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// BotDir is the directory whose presence on a repository's default
// branch makes canarybot serve it.
const BotDir = ".canarybot"

// Config wires a Server.
type Config struct {
	// App lists installations; nil with a token (Token and Repos).
	App *github.App
	// Token is the session of a plain token, serving Repos.
	Token *github.Session
	Repos []string
	// Fleet drives the plans; the Server adds and removes repositories.
	// Its NewEngine must call Server.Wire, and its OnCatalog
	// Server.OnCatalog.
	Fleet *fleet.Fleet
	// Dir holds one clone per repository, at Dir/<owner>/<name>.
	Dir string
	// Git is the template of each clone's options (logger, clock,
	// retry); URL, Branch, Dir, TokenSource and author are set per
	// repository.
	Git                 gitops.Options
	WebhookSecret       []byte
	MergeMethod         string
	RevertNeedsApproval bool
	Log                 *slog.Logger
	// QueueSize bounds queued webhook events; 1024 when zero.
	QueueSize int
	// OnAck observes each webhook answer's status and latency.
	OnAck func(status int, d time.Duration)
}

// Server serves the repositories of every installation.
type Server struct {
	cfg     Config
	handler *webhook.Handler
	queue   *webhook.Queue

	mu sync.Mutex
	// repos are the served repositories, idle the installed ones without
	// a .canarybot/ directory, both by lower-case OWNER/NAME.
	repos map[string]*served
	idle  map[string]*candidate
	ctx   context.Context // set by Run, for work started by callbacks
}

// candidate is a repository some installation reaches.
type candidate struct {
	sess *github.Session
	info github.Repository
}

// served is a repository being served.
type served struct {
	candidate
	local *gitops.Repo
	bot   *github.RepoBot
	// checked is the plans check last posted (or being posted).
	checked string
}

// New validates cfg and returns a Server; Start it, then Run it.
func New(cfg Config) (*Server, error) {
	var errs []error
	switch {
	case cfg.App == nil && cfg.Token == nil:
		errs = append(errs, errors.New("appserver: give an App or a token"))
	case cfg.App != nil && (cfg.Token != nil || len(cfg.Repos) > 0):
		errs = append(errs, errors.New("appserver: an App serves its installations' repositories; give no token or repositories"))
	case cfg.Token != nil && len(cfg.Repos) == 0:
		errs = append(errs, errors.New("appserver: a token serves the repositories given; give at least one"))
	}
	for _, r := range cfg.Repos {
		if _, _, err := splitRepo(r); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.Fleet == nil || cfg.Log == nil || cfg.Dir == "" || len(cfg.WebhookSecret) == 0 {
		errs = append(errs, errors.New("appserver: Fleet, Log, Dir and WebhookSecret are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	n := cfg.QueueSize
	if n <= 0 {
		n = 1024
	}
	s := &Server{cfg: cfg, queue: webhook.NewQueue(n), repos: map[string]*served{}, idle: map[string]*candidate{}}
	s.handler = &webhook.Handler{Secret: cfg.WebhookSecret, Seen: webhook.NewDeduper(10000, 24*time.Hour, nil),
		Enqueue: s.queue.Enqueue, Log: cfg.Log, OnAck: cfg.OnAck}
	return s, nil
}

// Handler serves POST /webhooks/github for every installation.
func (s *Server) Handler() http.Handler { return s.handler }

var validName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// splitRepo parses OWNER/NAME, refusing what could escape a directory.
func splitRepo(full string) (string, string, error) {
	owner, name, ok := strings.Cut(full, "/")
	if !ok || !validName.MatchString(owner) || !validName.MatchString(name) || owner == ".." || name == ".." ||
		owner == "." || name == "." {
		return "", "", fmt.Errorf("repository %q: want OWNER/NAME", full)
	}
	return owner, name, nil
}

func key(full string) string { return strings.ToLower(full) }

// Start lists what the App (or the token) reaches and serves every
// repository with plans. A repository that cannot be read is logged and
// tried again at the next sweep; an App whose installations cannot be
// listed is an error.
func (s *Server) Start(ctx context.Context) error {
	return s.scan(ctx)
}

// scan brings the served set up to date with GitHub's lists.
func (s *Server) scan(ctx context.Context) error {
	found, err := s.list(ctx)
	if err != nil {
		return err
	}
	for _, c := range found {
		s.consider(ctx, c, false)
	}
	s.mu.Lock()
	var gone []string
	for k := range s.repos {
		if _, ok := found[k]; !ok {
			gone = append(gone, k)
		}
	}
	for k := range s.idle {
		if _, ok := found[k]; !ok {
			delete(s.idle, k)
		}
	}
	s.mu.Unlock()
	for _, k := range gone {
		s.drop(k, "no installation reaches it any more")
	}
	return nil
}

// list returns every repository reachable now, by key.
func (s *Server) list(ctx context.Context) (map[string]*candidate, error) {
	found := map[string]*candidate{}
	if s.cfg.App == nil {
		for _, full := range s.cfg.Repos {
			owner, name, _ := splitRepo(full)
			info, err := s.cfg.Token.Repository(ctx, owner, name)
			if err != nil {
				return nil, err
			}
			found[key(full)] = &candidate{sess: s.cfg.Token, info: info}
		}
		return found, nil
	}
	insts, err := s.cfg.App.Installations(ctx)
	if err != nil {
		return nil, err
	}
	for _, in := range insts {
		if err := s.listInstallation(ctx, in.ID, found); err != nil {
			return nil, err
		}
	}
	return found, nil
}

func (s *Server) listInstallation(ctx context.Context, id int64, into map[string]*candidate) error {
	sess, err := s.cfg.App.Session(ctx, id)
	if err != nil {
		return err
	}
	repos, err := sess.Repositories(ctx)
	if err != nil {
		return err
	}
	for _, r := range repos {
		into[key(r.FullName())] = &candidate{sess: sess, info: r}
	}
	return nil
}

// consider serves c when it has plans and is not served yet; recheck
// looks again at an idle repository (a push may have added plans).
func (s *Server) consider(ctx context.Context, c *candidate, recheck bool) {
	k := key(c.info.FullName())
	s.mu.Lock()
	_, isServed := s.repos[k]
	_, isIdle := s.idle[k]
	s.mu.Unlock()
	if isServed || (isIdle && !recheck) || c.info.Archived {
		return
	}
	log := s.cfg.Log.With("repo", c.info.FullName(), "installation", c.sess.Installation())
	has, err := hasBotDir(ctx, c)
	if err == nil && has {
		err = s.serve(ctx, c)
	}
	switch {
	case err != nil:
		log.Warn("cannot serve repository; trying again at the next sweep", "err", err)
	case !has:
		s.mu.Lock()
		s.idle[k] = c
		s.mu.Unlock()
		log.Debug("no .canarybot/ directory; not served until one is pushed")
	}
}

// hasBotDir asks GitHub whether the default branch has .canarybot/
// (revalidated with its ETag, so asking again costs no rate limit).
func hasBotDir(ctx context.Context, c *candidate) (bool, error) {
	_, _, resp, err := c.sess.REST.Repositories.GetContents(ctx, c.info.Owner, c.info.Name, BotDir,
		&gh.RepositoryContentGetOptions{Ref: c.info.DefaultBranch})
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for %s/ in %s: %w", BotDir, c.info.FullName(), err)
	}
	return true, nil
}

// serve clones c and hands it to the fleet.
func (s *Server) serve(ctx context.Context, c *candidate) error {
	full := c.info.FullName()
	owner, name, err := splitRepo(full)
	if err != nil {
		return err
	}
	opts := s.cfg.Git
	opts.URL, opts.Branch = c.info.CloneURL, c.info.DefaultBranch
	opts.Dir = filepath.Join(s.cfg.Dir, strings.ToLower(owner), strings.ToLower(name))
	opts.TokenSource, opts.AuthorName = c.sess.GitToken, c.sess.Login
	opts.AuthorEmail = "canarybot@users.noreply.github.com"
	local, err := gitops.Open(ctx, opts)
	if err != nil {
		return fmt.Errorf("clone %s: %w", full, err)
	}
	sv := &served{candidate: *c, local: local}
	sv.bot = github.NewRepoBot(github.RepoConfig{Session: c.sess, Owner: owner, Repo: name, Base: c.info.DefaultBranch,
		Local: local, MergeMethod: s.cfg.MergeMethod, RevertNeedsApproval: s.cfg.RevertNeedsApproval,
		Plans: func() []github.PlanRef { return s.planRefs(full) }, Status: s.status(full, local),
		Wake: func(plan string) { s.wakePlan(full, plan) }, Log: s.cfg.Log.With("repo", full)})
	k := key(full)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.repos[k]; ok {
		return nil // served meanwhile
	}
	if err := s.cfg.Fleet.Add(full, fleetRepo{Publisher: sv.bot.Publisher, local: local}); err != nil {
		return err
	}
	s.repos[k] = sv
	delete(s.idle, k)
	s.cfg.Log.Info("serving repository", "repo", full, "installation", c.sess.Installation(), "branch", c.info.DefaultBranch)
	return nil
}

// drop stops serving the repository with key k.
func (s *Server) drop(k, why string) {
	s.mu.Lock()
	sv, ok := s.repos[k]
	delete(s.repos, k)
	delete(s.idle, k)
	s.mu.Unlock()
	if ok {
		s.cfg.Fleet.Remove(sv.info.FullName())
		s.cfg.Log.Info("no longer serving repository; its rollouts stay where Git has them", "repo", sv.info.FullName(), "why", why)
	}
}

// Served lists the served repositories as OWNER/NAME.
func (s *Server) Served() []string { return s.cfg.Fleet.Repositories() }

// fleetRepo is a served repository as the fleet drives it: transitions
// published as pull requests, fetches and reads from the clone.
type fleetRepo struct {
	*github.Publisher
	local *gitops.Repo
}

func (r fleetRepo) Fetch(ctx context.Context) (string, error) { return r.local.Fetch(ctx) }

func (r fleetRepo) Tree(ctx context.Context, rev string) (canary.Tree, error) {
	return r.local.Tree(ctx, rev)
}

// Local is the clone of served repository full, or nil.
func (s *Server) Local(full string) *gitops.Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv := s.repos[key(full)]; sv != nil {
		return sv.local
	}
	return nil
}
