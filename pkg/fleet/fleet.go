// Package fleet drives every plan of every repository one canarybot
// serves. Each repository has one clone, fetched at most once per MinPoll
// for all of its plans; plans are discovered from Git at each fetched
// revision (canary.Discover), and each valid plan is ticked by its own
// canary.Engine on a bounded worker pool shared by all repositories, with
// per-plan backoff. Reads come from immutable snapshots; commits to one
// repository are serialised by the repository itself (gitops.Repo). An
// invalid plan is reported and does not stop the others; a deleted plan
// stops being driven, and one deleted mid-rollout is held where it is.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Repository is one GitOps repository: canary.Repo plus fetching and
// reading revisions without a work tree. gitops.Repo implements it.
type Repository interface {
	canary.Repo
	// Fetch updates the branch from the remote and returns its head.
	Fetch(ctx context.Context) (string, error)
	// Tree returns rev ("" for the head as last fetched), read-only.
	Tree(ctx context.Context, rev string) (canary.Tree, error)
}

// Config wires a Fleet.
type Config struct {
	// Workers bounds the ticks running at once across all repositories.
	Workers int
	// Poll bounds every wait; MinPoll is the shortest wait and the least
	// time between two fetches of one repository.
	Poll, MinPoll time.Duration
	// NewEngine returns an engine for a plan with its adapters wired; the
	// fleet sets its Repo, Plans and PlanName.
	NewEngine func(repo string, plan *canary.CanaryPlan) *canary.Engine
	// OnTick, when set, receives every tick's outcome.
	OnTick func(Outcome)
	// OnCatalog, when set, receives each repository's plan catalog after
	// every fetch (the same head may come again).
	OnCatalog func(repo string, c *canary.Catalog)
	// OnRemove, when set, receives the name of a repository that Remove
	// stopped serving, once its last tick has finished.
	OnRemove func(repo string)
	Clock    canary.Clock
	Log      *slog.Logger
}

// Outcome is what one tick of one plan did.
type Outcome struct {
	Repo, Plan string
	Report     canary.Report
	Err        error
	// Next is when the plan is due again.
	Next time.Time
}

// Fleet drives the plans of many repositories.
type Fleet struct {
	cfg Config
	sem chan struct{}

	mu    sync.Mutex
	repos map[string]*repoRunner
	ctx   context.Context // set by Run; repositories added later start under it
	wg    sync.WaitGroup
}

// New returns a Fleet; add repositories with Add, then Run it.
func New(cfg Config) (*Fleet, error) {
	var errs []error
	if cfg.NewEngine == nil {
		errs = append(errs, errors.New("fleet: NewEngine is required"))
	}
	if cfg.Clock == nil {
		errs = append(errs, errors.New("fleet: Clock is required"))
	}
	if cfg.Log == nil {
		errs = append(errs, errors.New("fleet: Log is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.MinPoll <= 0 {
		cfg.MinPoll = time.Second
	}
	if cfg.Poll < cfg.MinPoll {
		cfg.Poll = max(30*time.Second, cfg.MinPoll)
	}
	return &Fleet{cfg: cfg, sem: make(chan struct{}, cfg.Workers), repos: map[string]*repoRunner{}}, nil
}

// Add serves repo under name (e.g. "owner/name" or its URL). Adding a name
// again replaces nothing and returns an error. Repositories added while
// the fleet runs start at once.
func (f *Fleet) Add(name string, repo Repository) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.repos[name]; ok {
		return fmt.Errorf("fleet: repository %s is already served", name)
	}
	r := newRepoRunner(f, name, repo)
	f.repos[name] = r
	if f.ctx != nil {
		f.start(r)
	}
	return nil
}

// Remove stops serving the repository name; its plans stop after their
// running ticks. It reports whether the repository was served.
func (f *Fleet) Remove(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.repos[name]
	if ok {
		delete(f.repos, name)
		r.stop()
		if f.ctx == nil && f.cfg.OnRemove != nil { // never started: no tick to wait for
			f.cfg.OnRemove(name)
		}
	}
	return ok
}

// Repositories lists the names served, sorted.
func (f *Fleet) Repositories() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, 0, len(f.repos))
	for n := range f.repos {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Wake makes every plan for which match reports true due, and its
// repository fetched first, and returns how many plans it woke (as of the
// last discovery). Wake-ups are coalesced and rate-limited per plan: a
// burst of notifications starts at most one tick of a plan per MinPoll.
// match receives the repository name and the plan.
func (f *Fleet) Wake(match func(repo string, plan *canary.CanaryPlan) bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.repos {
		c := r.catalog.latest()
		if c == nil {
			continue
		}
		hits := 0
		for _, e := range c.Plans {
			if match(r.name, e.Plan) {
				hits++
			}
		}
		if hits > 0 {
			r.wake(match)
			n += hits
		}
	}
	return n
}

// Catalog is the plan catalog last discovered in repository name, or nil
// before its first fetch or when it is not served.
func (f *Fleet) Catalog(name string) *canary.Catalog {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.repos[name]; ok {
		return r.catalog.latest()
	}
	return nil
}

// Refresh asks repository name to fetch soon (at most once per MinPoll)
// and discover its plans again, e.g. after a push added one. It reports
// whether the repository is served.
func (f *Fleet) Refresh(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.repos[name]
	if ok {
		select {
		case r.refreshCh <- struct{}{}:
		default: // one is pending already
		}
	}
	return ok
}

// Run drives every repository until ctx ends, then waits for running ticks.
func (f *Fleet) Run(ctx context.Context) error {
	f.mu.Lock()
	if f.ctx != nil {
		f.mu.Unlock()
		return errors.New("fleet: already running")
	}
	f.ctx = ctx
	for _, r := range f.repos {
		f.start(r)
	}
	f.mu.Unlock()
	<-ctx.Done()
	f.wg.Wait()
	return nil
}

// start runs r's loop. The caller holds f.mu.
func (f *Fleet) start(r *repoRunner) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		r.run(f.ctx)
		if r.removed() && f.cfg.OnRemove != nil {
			f.cfg.OnRemove(r.name)
		}
	}()
}

// Once fetches every repository once and ticks each of its valid plans
// once, concurrently on the worker pool, and returns the outcomes sorted
// by repository and plan. Problems with plans are logged, as Run does.
func (f *Fleet) Once(ctx context.Context) ([]Outcome, error) {
	f.mu.Lock()
	runners := make([]*repoRunner, 0, len(f.repos))
	for _, r := range f.repos {
		runners = append(runners, r)
	}
	f.mu.Unlock()
	var (
		mu   sync.Mutex
		all  []Outcome
		errs []error
		wg   sync.WaitGroup
	)
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := r.once(ctx)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, out...)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(all, func(a, b Outcome) int {
		if a.Repo != b.Repo {
			return compare(a.Repo, b.Repo)
		}
		return compare(a.Plan, b.Plan)
	})
	return all, errors.Join(errs...)
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// tick runs one tick of p on the worker pool.
func (f *Fleet) tick(ctx context.Context, p *planRun) (canary.Report, error) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return canary.Report{}, ctx.Err()
	}
	defer func() { <-f.sem }()
	return p.eng.Tick(ctx)
}
