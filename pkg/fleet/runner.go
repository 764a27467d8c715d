package fleet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// repoRunner drives the plans of one repository.
type repoRunner struct {
	f    *Fleet
	name string
	repo Repository
	// local is repo with Checkout reading the head as last fetched: the
	// runner fetches, once for all plans.
	local   localRepo
	catalog catalogCache

	wakeCh    chan func(string, *canary.CanaryPlan) bool
	refreshCh chan struct{}
	done      chan tickDone
	quit      chan struct{}
	stopMu    sync.Once

	// The fields below belong to the run loop.
	plans      map[string]*planRun
	lastFetch  time.Time
	fetchFails int
	forceFetch bool
	reported   map[string]string // problem key → message last logged
}

// planRun is one plan's schedule.
type planRun struct {
	name     string
	eng      *canary.Engine
	due      time.Time
	started  time.Time
	running  bool
	failures int
	// gone is set when the plan left the catalog while its tick ran.
	gone bool
	// woken is set when a wake-up arrived while its tick ran: it ticks
	// again after, instead of when the tick's decision said.
	woken bool
}

type tickDone struct {
	plan   string
	report canary.Report
	err    error
}

func newRepoRunner(f *Fleet, name string, repo Repository) *repoRunner {
	return &repoRunner{
		f: f, name: name, repo: repo, local: localRepo{repo},
		wakeCh:    make(chan func(string, *canary.CanaryPlan) bool, 1),
		refreshCh: make(chan struct{}, 1),
		done:      make(chan tickDone),
		quit:      make(chan struct{}),
		plans:     map[string]*planRun{},
		reported:  map[string]string{},
	}
}

func (r *repoRunner) stop() { r.stopMu.Do(func() { close(r.quit) }) }

// removed reports whether stop was called.
func (r *repoRunner) removed() bool {
	select {
	case <-r.quit:
		return true
	default:
		return false
	}
}

// wake asks the loop to make the plans match selects due now. A wake-up
// already pending absorbs this one (both matchers are kept).
func (r *repoRunner) wake(match func(string, *canary.CanaryPlan) bool) {
	for {
		select {
		case r.wakeCh <- match:
			return
		default:
		}
		select {
		case prev := <-r.wakeCh:
			m := match
			match = func(repo string, p *canary.CanaryPlan) bool { return prev(repo, p) || m(repo, p) }
		default:
		}
	}
}

// run is the repository's loop: fetch when plans are due, start due
// plans on the worker pool, and wait for a tick, a wake-up or the clock.
func (r *repoRunner) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		now := r.f.cfg.Clock.Now()
		if r.needFetch(now) {
			r.refresh(ctx)
		}
		r.dispatch(ctx)
		select {
		case <-ctx.Done():
			r.drain()
			return
		case d := <-r.done:
			r.finish(d)
		case m := <-r.wakeCh:
			r.applyWake(m)
		case <-r.refreshCh:
			r.forceFetch = true
		case <-r.f.cfg.Clock.After(r.nextWait(now)):
		}
	}
}

// once fetches, ticks every valid plan once and waits for them.
func (r *repoRunner) once(ctx context.Context) ([]Outcome, error) {
	if err := r.refresh(ctx); err != nil {
		return nil, err
	}
	now := r.f.cfg.Clock.Now()
	for _, p := range r.plans {
		p.due = now
	}
	r.dispatch(ctx)
	var out []Outcome
	for r.running() > 0 {
		out = append(out, r.finish(<-r.done))
	}
	return out, nil
}

// needFetch: a plan is due (or a wake-up asked) and the last fetch is at
// least MinPoll old, or the last fetch is Poll old.
func (r *repoRunner) needFetch(now time.Time) bool {
	age := now.Sub(r.lastFetch)
	if r.fetchFails > 0 && age < backoff(r.fetchFails, r.f.cfg.MinPoll, r.f.cfg.Poll) {
		return false
	}
	if age >= r.f.cfg.Poll {
		return true
	}
	if age < r.f.cfg.MinPoll {
		return false
	}
	if r.forceFetch {
		return true
	}
	for _, p := range r.plans {
		if !p.running && !p.due.After(now) {
			return true
		}
	}
	return false
}

// refresh fetches the repository, discovers its plans at the new head,
// reports what changed and brings the plan set up to date.
func (r *repoRunner) refresh(ctx context.Context) error {
	log := r.f.cfg.Log.With("repo", r.name)
	r.lastFetch, r.forceFetch = r.f.cfg.Clock.Now(), false
	head, err := r.repo.Fetch(ctx)
	if err != nil {
		r.fetchFails++
		if ctx.Err() == nil {
			log.Warn("fetch failed; plans keep the last revision", "err", err,
				"retry_in", backoff(r.fetchFails, r.f.cfg.MinPoll, r.f.cfg.Poll))
		}
		return fmt.Errorf("fetch: %w", err)
	}
	r.fetchFails = 0
	t, err := r.repo.Tree(ctx, head)
	if err != nil {
		return fmt.Errorf("read %s: %w", head, err)
	}
	c, err := r.catalog.at(t)
	if err != nil {
		log.Error("cannot discover plans; nothing is driven until this is fixed", "commit", short(head), "err", err)
		return err
	}
	r.reportProblems(c)
	if r.f.cfg.OnCatalog != nil {
		r.f.cfg.OnCatalog(r.name, c)
	}
	r.syncPlans(t, c)
	return nil
}

// reportProblems logs each invalid plan (and a bad config) once, and again
// when its errors change.
func (r *repoRunner) reportProblems(c *canary.Catalog) {
	seen := map[string]bool{}
	report := func(key, where string, err error) {
		seen[key] = true
		if r.reported[key] == err.Error() {
			return
		}
		r.reported[key] = err.Error()
		r.f.cfg.Log.Error("invalid plan; it is not driven, the others are", "repo", r.name, "file", where,
			"commit", short(c.Head), "err", err)
	}
	if c.ConfigErr != nil {
		report("config", canary.ConfigPath, c.ConfigErr)
	}
	for _, p := range c.Invalid {
		report("plan:"+p.Where(), p.Where(), p.Err)
	}
	for k := range r.reported {
		if !seen[k] {
			delete(r.reported, k)
		}
	}
}

// syncPlans starts driving new plans and stops driving deleted ones.
func (r *repoRunner) syncPlans(t canary.Tree, c *canary.Catalog) {
	now := r.f.cfg.Clock.Now()
	for _, e := range c.Plans {
		name := e.Plan.Metadata.Name
		if p, ok := r.plans[name]; ok {
			p.gone = false
			continue
		}
		eng := r.f.cfg.NewEngine(r.name, e.Plan)
		eng.Repo, eng.PlanName, eng.Plans = r.local, name, r.catalog.plans
		r.plans[name] = &planRun{name: name, eng: eng, due: now}
		r.f.cfg.Log.Info("driving plan", "repo", r.name, "plan", name, "file", e.Path, "commit", short(c.Head))
	}
	for name, p := range r.plans {
		if _, ok := c.Lookup(name); ok {
			continue
		}
		if _, invalid := c.Problem(name); !invalid {
			r.reportDeleted(t, name)
		}
		if p.running {
			p.gone = true
			continue
		}
		delete(r.plans, name)
	}
}

// reportDeleted says that a plan left the repository, and where its
// rollout is held when it was mid-rollout.
func (r *repoRunner) reportDeleted(t canary.Tree, name string) {
	b, err := canary.ReadRepoFile(t.FS, canary.StatePath(name), canary.MaxPlanBytes)
	var st *canary.RolloutState
	if err == nil {
		st, err = canary.ParseState(b)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.f.cfg.Log.Info("plan deleted; no longer driven", "repo", r.name, "plan", name)
	case err != nil:
		r.f.cfg.Log.Warn("plan deleted; no longer driven, and its state cannot be read", "repo", r.name, "plan", name, "err", err)
	case st.Status.Phase == canary.PhaseProgressing || st.Status.Phase == canary.PhasePaused:
		s := st.Status
		r.f.cfg.Log.Warn("plan deleted mid-rollout; held where it is, not reverted", "repo", r.name, "plan", name,
			"phase", s.Phase, "step", s.StepIndex, "weight", s.Weight, "canary", s.Candidate.URI)
	default:
		r.f.cfg.Log.Info("plan deleted; no longer driven, its state file stays", "repo", r.name, "plan", name, "phase", st.Status.Phase)
	}
}

// dispatch starts every due plan that is not running.
func (r *repoRunner) dispatch(ctx context.Context) {
	now := r.f.cfg.Clock.Now()
	for _, p := range r.plans {
		if p.running || p.gone || p.due.After(now) {
			continue
		}
		p.running, p.started = true, now
		go func() {
			rep, err := r.f.tick(ctx, p)
			// The loop, drain or once receives every tick it started.
			r.done <- tickDone{plan: p.name, report: rep, err: err}
		}()
	}
}

// finish records a tick's outcome and schedules the plan's next tick.
func (r *repoRunner) finish(d tickDone) Outcome {
	now := r.f.cfg.Clock.Now()
	cfg := r.f.cfg
	o := Outcome{Repo: r.name, Plan: d.plan, Report: d.report, Err: d.err}
	p, ok := r.plans[d.plan]
	if !ok {
		return o
	}
	p.running = false
	switch {
	case d.err != nil && canary.IsTerminal(d.err):
		p.failures++
		p.due = now.Add(cfg.Poll)
		cfg.Log.Error("plan failed; retrying when Git changes or after poll", "repo", r.name, "plan", d.plan, "err", d.err, "retry_in", cfg.Poll)
	case d.err != nil:
		p.failures++
		wait := backoff(p.failures, cfg.MinPoll, cfg.Poll)
		p.due = now.Add(wait)
		cfg.Log.Warn("tick failed; retrying", "repo", r.name, "plan", d.plan, "err", d.err, "retry_in", wait)
	case d.report.Decision.Action.Commits() && !d.report.Commit.NoOp:
		p.failures = 0
		p.due = now
	case !d.report.Decision.Until.IsZero():
		p.failures = 0
		p.due = now.Add(min(max(d.report.Decision.Until.Sub(now), cfg.MinPoll), cfg.Poll))
	default:
		p.failures = 0
		p.due = now.Add(cfg.Poll)
	}
	if p.woken {
		p.woken = false
		p.due = minTime(p.due, p.started.Add(cfg.MinPoll))
	}
	if p.gone {
		delete(r.plans, d.plan)
	}
	o.Next = p.due
	if cfg.OnTick != nil {
		cfg.OnTick(o)
	}
	return o
}

// applyWake makes the plans m selects due now.
func (r *repoRunner) applyWake(m func(string, *canary.CanaryPlan) bool) {
	now := r.f.cfg.Clock.Now()
	c := r.catalog.latest()
	if c == nil {
		r.forceFetch = true
		return
	}
	for _, e := range c.Plans {
		if p, ok := r.plans[e.Plan.Metadata.Name]; ok && m(r.name, e.Plan) {
			p.due, p.woken, r.forceFetch = now, p.running, true
			if next := p.started.Add(r.f.cfg.MinPoll); next.After(now) {
				p.due = next // at most one tick per MinPoll, however many wake-ups
			}
		}
	}
}

// nextWait is how long the loop may sleep: until the next plan is due,
// at least MinPoll and at most Poll.
func (r *repoRunner) nextWait(now time.Time) time.Duration {
	wait := r.f.cfg.Poll
	if r.forceFetch {
		wait = r.lastFetch.Add(r.f.cfg.MinPoll).Sub(now)
	}
	for _, p := range r.plans {
		if !p.running {
			wait = min(wait, p.due.Sub(now))
		}
	}
	return max(wait, r.f.cfg.MinPoll)
}

func (r *repoRunner) running() int {
	n := 0
	for _, p := range r.plans {
		if p.running {
			n++
		}
	}
	return n
}

// drain waits for the running ticks after the loop was cancelled.
func (r *repoRunner) drain() {
	for r.running() > 0 {
		r.finish(<-r.done)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// backoff is MinPoll doubled per failure, capped at Poll.
func backoff(failures int, minPoll, poll time.Duration) time.Duration {
	d := minPoll
	for i := 1; i < failures && d < poll; i++ {
		d *= 2
	}
	return min(d, poll)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// localRepo is a Repository whose Checkout reads the head as last
// fetched, without fetching: the runner fetches once for all plans.
type localRepo struct{ Repository }

func (l localRepo) Checkout(ctx context.Context) (canary.Tree, error) { return l.Tree(ctx, "") }

// catalogCache keeps the catalogs of the last few revisions: every plan
// of a repository reads the same catalog at the same head.
type catalogCache struct {
	mu     sync.Mutex
	byHead map[string]*canary.Catalog
	order  []string
	// files keeps decoded plan files by content across revisions.
	files canary.PlanCache
}

const cachedCatalogs = 4

// at returns the catalog of t, discovering it once per head.
func (c *catalogCache) at(t canary.Tree) (*canary.Catalog, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cat, ok := c.byHead[t.Head]; ok {
		return cat, nil
	}
	cat, err := canary.DiscoverCached(t, &c.files)
	if err != nil {
		return nil, err
	}
	if c.byHead == nil {
		c.byHead = map[string]*canary.Catalog{}
	}
	c.byHead[t.Head] = cat
	c.order = append(c.order, t.Head)
	if len(c.order) > cachedCatalogs {
		delete(c.byHead, c.order[0])
		c.order = slices.Delete(c.order, 0, 1)
	}
	return cat, nil
}

// latest is the catalog discovered last, or nil.
func (c *catalogCache) latest() *canary.Catalog {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.order) == 0 {
		return nil
	}
	return c.byHead[c.order[len(c.order)-1]]
}

// plans is the engine's Plans function over the cache.
func (c *catalogCache) plans(_ context.Context, t canary.Tree) (*canary.Catalog, error) {
	return c.at(t)
}
