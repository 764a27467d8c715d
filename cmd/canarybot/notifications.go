package main

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/metrics"
	notifications "github.com/canarybot/canarybot/pkg/notify"
)

// notifiers runs one notifications.Notifier per served repository
// (docs/notifications.md): started with the leader's context, poked after
// each fetch and each committed transition, and on its own timer.
type notifiers struct {
	log     *slog.Logger
	metrics notifications.Metrics
	secrets notifications.SecretReader

	mu     sync.Mutex
	ctx    context.Context // set by start; nil until then
	byRepo map[string]*notifierRun
}

type notifierRun struct {
	n       *notifications.Notifier
	repo    *gitops.Repo
	cancel  context.CancelFunc
	running bool
	// primed: Init ran, after a fetch and before this process committed.
	primed sync.Once
}

func newNotifiers(log *slog.Logger, rec *metrics.Recorder, secretsDir string) *notifiers {
	return &notifiers{log: log, metrics: rec.Notifications(), secrets: notifications.EnvAndFiles{Dir: secretsDir},
		byRepo: map[string]*notifierRun{}}
}

// add serves repo under name (web is its GitHub page, or ""); catalog,
// when set, replaces plan discovery (one --plan). A name added again is
// left as it is. It runs at once when start was called.
func (s *notifiers) add(name, web string, repo *gitops.Repo,
	catalog func(context.Context, canary.Tree) (*canary.Catalog, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byRepo[name]; ok || repo == nil {
		return
	}
	// The cursors are refs on the remote itself (refs/canarybot/notified/*).
	n, err := notifications.New(notifications.Config{Repository: name, WebURL: web, Source: notifications.GitSource{R: repo},
		Cursors: notifications.RefCursors{Refs: repo}, Catalog: catalog, Metrics: s.metrics, Secrets: s.secrets, Clock: canary.SystemClock{},
		Log: s.log})
	if err != nil {
		s.log.Error("notifications: cannot start", "repo", name, "err", err)
		return
	}
	r := &notifierRun{n: n, repo: repo}
	s.byRepo[name] = r
	if s.ctx != nil {
		s.run(r)
	}
}

// start runs every notifier added, and those added later, until ctx ends.
func (s *notifiers) start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx = ctx
	for _, r := range s.byRepo {
		s.run(r)
	}
}

// run starts r under s.ctx. The caller holds s.mu.
func (s *notifiers) run(r *notifierRun) {
	if r.running {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	r.cancel, r.running = cancel, true
	go func() { _ = r.n.Run(ctx) }()
}

// remove stops the notifier of a repository no longer served.
func (s *notifiers) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.byRepo[name]; ok {
		if r.cancel != nil {
			r.cancel()
		}
		delete(s.byRepo, name)
	}
}

// poke asks repo's notifier for a pass: the branch moved.
func (s *notifiers) poke(name string) {
	s.mu.Lock()
	r := s.byRepo[name]
	s.mu.Unlock()
	if r != nil {
		r.n.Poke()
	}
}

// offer gives repo's notifier the catalog the fleet discovered at a
// fetch, and pokes it. The first offer, which comes before the fleet
// ticks any plan of the repository, primes the notifier.
func (s *notifiers) offer(ctx context.Context, name string, c *canary.Catalog) {
	s.mu.Lock()
	r := s.byRepo[name]
	s.mu.Unlock()
	if r != nil {
		s.prime(ctx, name, r)
		r.n.Offer(c)
	}
}

// primeAll primes every notifier, for one --plan, whose clone was just
// fetched to read the plan.
func (s *notifiers) primeAll(ctx context.Context) {
	s.mu.Lock()
	runs := maps.Clone(s.byRepo)
	s.mu.Unlock()
	for name, r := range runs {
		s.prime(ctx, name, r)
	}
}

// prime starts each channel without a cursor at the head just fetched,
// once per process: a first run sends nothing older, and nothing of its
// own transitions is lost to a race with them.
func (s *notifiers) prime(ctx context.Context, name string, r *notifierRun) {
	r.primed.Do(func() {
		if err := r.n.Init(ctx); err != nil {
			s.log.Warn("notifications: cannot start the cursors; the notifier retries", "repo", name, "err", err)
		}
	})
}

// afterTick wraps an engine's AfterTick so that every tick (which
// fetched, and may have committed) pokes repo's notifier; a pass finds
// nothing to do at once when the head has not moved.
func (s *notifiers) afterTick(name string, next func(canary.Report, error, time.Duration)) func(canary.Report, error, time.Duration) {
	return func(rep canary.Report, err error, took time.Duration) {
		if next != nil {
			next(rep, err, took)
		}
		s.poke(name)
	}
}

// once runs one pass of every notifier, for --once. A failure is logged,
// not returned: the next run delivers what this one could not.
func (s *notifiers) once(ctx context.Context) {
	s.mu.Lock()
	runs := make([]*notifierRun, 0, len(s.byRepo))
	for _, r := range s.byRepo {
		runs = append(runs, r)
	}
	s.mu.Unlock()
	for _, r := range runs {
		if !r.n.Active(ctx) {
			continue
		}
		if _, err := r.repo.Fetch(ctx); err != nil {
			s.log.Warn("notifications: cannot fetch; none sent this run", "err", err)
			continue
		}
		if err := r.n.Pass(ctx); err != nil {
			s.log.Warn("notifications: not all were delivered; the next run retries them", "err", err)
		}
	}
}

// planCatalog is the catalog of one plan file, for --plan: the plan, or
// its problem.
func planCatalog(path string) func(context.Context, canary.Tree) (*canary.Catalog, error) {
	return func(_ context.Context, t canary.Tree) (*canary.Catalog, error) {
		c := &canary.Catalog{Head: t.Head, PlansDir: canary.DefaultPlansDir}
		p, err := canary.ReadPlan(t, path)
		if err != nil {
			c.Invalid = []canary.PlanProblem{{Path: path, Err: err}}
			return c, nil
		}
		c.Plans = []canary.PlanEntry{{Path: path, Plan: p}}
		return c, nil
	}
}
