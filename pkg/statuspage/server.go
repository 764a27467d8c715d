package statuspage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

//go:embed templates static
var assets embed.FS

// DefaultRefresh is how often an open page reloads itself.
const DefaultRefresh = 30 * time.Second

// Config configures a Page.
type Config struct {
	// Repos lists the repositories to show. It is called on every request,
	// so a bot whose set of repositories changes shows the current one.
	Repos func() []Repo
	Clock canary.Clock
	Log   *slog.Logger
	// Refresh is how often an open page reloads itself, with JavaScript;
	// DefaultRefresh when zero, never when negative.
	Refresh time.Duration
}

// Page serves the status page and its JSON API. It is safe for concurrent
// use.
type Page struct {
	cfg   Config
	pages map[string]*template.Template
	svg   *template.Template

	plans canary.PlanCache // decoded plan files, shared by every repository

	mu    sync.Mutex
	cache map[string]*snapshot // by repository name; replaced when its head moves
}

// New returns a page over cfg.Repos.
func New(cfg Config) (*Page, error) {
	if cfg.Repos == nil {
		return nil, errors.New("statuspage: Repos is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = canary.SystemClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = DefaultRefresh
	}
	p := &Page{cfg: cfg, pages: map[string]*template.Template{}, cache: map[string]*snapshot{}}
	base, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/judge.svg")
	if err != nil {
		return nil, fmt.Errorf("statuspage: parse layout: %w", err)
	}
	p.svg = base
	for _, name := range []string{"fleet", "rollout", "error"} {
		t, err := template.Must(base.Clone()).ParseFS(assets, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("statuspage: parse %s: %w", name, err)
		}
		p.pages[name] = t
	}
	return p, nil
}

// Register adds the page's routes to mux: GET /, /rollouts/{plan},
// /rollouts/{plan}/judge.svg, /api/v1/rollouts, /api/v1/rollouts/{plan}
// and /static/. A rollout's routes take ?repo=NAME when several
// repositories are shown.
func (p *Page) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(assets, "static")
	mux.HandleFunc("GET /{$}", p.serveFleet)
	mux.HandleFunc("GET /rollouts/{plan}", p.serveRollout)
	mux.HandleFunc("GET /rollouts/{plan}/judge.svg", p.serveJudgeSVG)
	mux.HandleFunc("GET /api/v1/rollouts", p.serveFleet)
	mux.HandleFunc("GET /api/v1/rollouts/{plan}", p.serveRollout)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
}

// Handler is a handler serving only the page's routes.
func (p *Page) Handler() http.Handler {
	mux := http.NewServeMux()
	p.Register(mux)
	return mux
}

// repos lists the configured repositories, sorted by name.
func (p *Page) repos() []Repo {
	rs := slices.Clone(p.cfg.Repos())
	slices.SortFunc(rs, func(a, b Repo) int { return strings.Compare(a.Name, b.Name) })
	return rs
}

// snapshot returns r at its head, reading it only when the head moved.
func (p *Page) snapshot(ctx context.Context, r Repo) (*snapshot, error) {
	t, err := r.Git.Tree(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("read head of %s: %w", r.Name, err)
	}
	p.mu.Lock()
	s := p.cache[r.Name]
	p.mu.Unlock()
	if s != nil && s.tree.Head == t.Head {
		return s, nil
	}
	if s, err = readSnapshot(r, t, &p.plans); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.cache[r.Name] = s
	p.mu.Unlock()
	return s, nil
}

// fleet reads every repository; one that cannot be read is listed with
// its error.
func (p *Page) fleet(ctx context.Context) *Fleet {
	now := p.cfg.Clock.Now()
	f := &Fleet{GeneratedAt: now, Repos: []RepoStatus{}}
	names := map[string]bool{}
	for _, r := range p.repos() {
		names[r.Name] = true
		s, err := p.snapshot(ctx, r)
		if err != nil {
			p.cfg.Log.Warn("status page: read repository", "repo", r.Name, "err", clean(err.Error()))
			f.Repos = append(f.Repos, RepoStatus{Repo: r.Name, Error: clean(err.Error()), Rollouts: []RolloutSummary{}})
			continue
		}
		st := s.status
		st.Rollouts = slices.Clone(st.Rollouts)
		for i := range st.Rollouts {
			st.Rollouts[i] = withTimes(st.Rollouts[i], now)
		}
		f.Repos = append(f.Repos, st)
	}
	p.mu.Lock()
	for name := range p.cache {
		if !names[name] {
			delete(p.cache, name) // no longer served
		}
	}
	p.mu.Unlock()
	return f
}

// withTimes fills the time the rollout has spent in its current step.
func withTimes(r RolloutSummary, now time.Time) RolloutSummary {
	if r.Active() && !r.StepStartedAt.IsZero() && now.After(r.StepStartedAt) {
		d := now.Sub(r.StepStartedAt)
		r.InStep, r.InStepSeconds = humanDuration(d), d.Round(time.Second).Seconds()
	}
	return r
}

// rollout finds plan in the repository named repo, or in the one
// repository that has it when repo is empty.
func (p *Page) rollout(ctx context.Context, repo, plan string) (*Rollout, error) {
	var found []*snapshot
	for _, r := range p.repos() {
		if repo != "" && r.Name != repo {
			continue
		}
		s, err := p.snapshot(ctx, r)
		if err != nil {
			return nil, err
		}
		if slicesIndex(s.status.Rollouts, plan) >= 0 {
			found = append(found, s)
		}
	}
	switch {
	case len(found) == 0 && repo != "":
		return nil, fmt.Errorf("%w: no plan or rollout %q in repository %q", ErrNotFound, plan, repo)
	case len(found) == 0:
		return nil, fmt.Errorf("%w: no plan or rollout %q", ErrNotFound, plan)
	case len(found) > 1:
		return nil, fmt.Errorf("%w: plan %q is in %d repositories: choose one with ?repo=", errAmbiguous, plan, len(found))
	}
	r, err := found[0].rollout(ctx, plan)
	if err != nil {
		return nil, err
	}
	out := *r
	out.GeneratedAt = p.cfg.Clock.Now()
	out.RolloutSummary = withTimes(out.RolloutSummary, out.GeneratedAt)
	return &out, nil
}

var errAmbiguous = errors.New("ambiguous")

// status is the HTTP status of a read error.
func status(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errAmbiguous):
		return http.StatusBadRequest
	case errors.Is(err, context.Canceled):
		return 499 // the client went away; nobody reads this
	}
	return http.StatusInternalServerError
}
