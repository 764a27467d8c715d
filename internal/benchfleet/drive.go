package benchfleet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/fleet"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/kustomize"
)

// Env is what every section shares.
type Env struct {
	// Dir holds the repositories; a temporary directory when empty.
	Dir string
	// Timeout bounds the section.
	Timeout time.Duration
	// Progress, when set, receives a line every few seconds of long work.
	Progress func(format string, args ...any)
}

func (e Env) progress(format string, args ...any) {
	if e.Progress != nil {
		e.Progress(format, args...)
	}
}

// workDir returns e.Dir, or a temporary directory removed by cleanup.
func (e Env) workDir(prefix string) (dir string, cleanup func(), err error) {
	if e.Dir != "" {
		return e.Dir, func() {}, nil
	}
	d, err := os.MkdirTemp("", "canarybot-bench-"+prefix+"-")
	if err != nil {
		return "", nil, fmt.Errorf("work directory: %w", err)
	}
	return d, func() { os.RemoveAll(d) }, nil
}

// driverConfig wires one canarybot fleet to one remote.
type driverConfig struct {
	URL, Dir string
	// Author signs the fleet's commits (which replica committed what).
	Author  string
	Workers int
	// Kustomize renders with pkg/kustomize over real overlays instead of
	// the stand-in that writes one bot-owned file per plan.
	Kustomize bool
	// SyncDelay, when set, is how long the stand-in Argo CD takes to sync
	// a revision (see argoSync); Poll then bounds the wait for it.
	SyncDelay, Poll time.Duration
	Log             *slog.Logger
}

// driver is one running fleet over its own clone.
type driver struct {
	repo   *gitops.Repo
	rec    *recorder
	cancel context.CancelFunc
	done   chan struct{}
}

// startDriver clones c.URL and runs a fleet over it until stop.
func startDriver(ctx context.Context, c driverConfig) (*driver, error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Poll <= 0 {
		c.Poll = 5 * time.Second
	}
	clock := canary.SystemClock{}
	argo := newArgoSync(c.SyncDelay, clock)
	repo, err := gitops.Open(ctx, gitops.Options{URL: c.URL, Dir: c.Dir, Logger: c.Log, AuthorName: c.Author,
		AuthorEmail: c.Author + "@example.com", Retry: gitops.Retry{Attempts: 20, Initial: 5 * time.Millisecond, Max: 200 * time.Millisecond}})
	if err != nil {
		return nil, err
	}
	newEngine := func(string, *canary.CanaryPlan) *canary.Engine {
		e := edges{sync: argo}
		return &canary.Engine{Renderer: e, Sync: e, Gates: e, Approvals: e, Artifacts: e, Stable: e.stable,
			Clock: clock, Log: c.Log, Poll: c.Poll, MinPoll: 50 * time.Millisecond}
	}
	if c.Kustomize {
		r := kustomize.NewRenderer(kustomize.NewBuilder())
		standIn := newEngine
		newEngine = func(repo string, p *canary.CanaryPlan) *canary.Engine {
			e := standIn(repo, p)
			e.Renderer, e.Stable = r, r.Stable
			return e
		}
	}
	rec := &recorder{Repo: repo}
	f, err := fleet.New(fleet.Config{Workers: c.Workers, Poll: c.Poll, MinPoll: 50 * time.Millisecond,
		Clock: clock, Log: c.Log, NewEngine: newEngine})
	if err != nil {
		return nil, err
	}
	if err := f.Add("bench", rec); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	d := &driver{repo: repo, rec: rec, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(d.done); _ = f.Run(runCtx) }()
	return d, nil
}

// stop ends the fleet and waits for its running ticks.
func (d *driver) stop() {
	d.cancel()
	<-d.done
}

// view reads revisions: gitops.Repo and gitops.Reader both are one.
type view interface {
	Tree(ctx context.Context, rev string) (canary.Tree, error)
	Log(ctx context.Context, head string, limit int) ([]gitops.Commit, error)
}

// withTimeout bounds ctx by e.Timeout, when set.
func (e Env) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if e.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, e.Timeout)
}

// waitPromoted polls until want plans are promoted at the head of v after
// refresh, reporting progress (committed of transitions) every few seconds.
func waitPromoted(ctx context.Context, env Env, v view, refresh func(context.Context) error, want, transitions int,
	committed func(context.Context) int) (int, error) {
	start, last, n := time.Now(), time.Now(), 0
	seen := map[string]bool{}
	for {
		if err := refresh(ctx); err == nil {
			if got, err := promoted(ctx, v, seen); err == nil {
				n = got
			}
		}
		if n == want {
			return n, nil
		}
		if time.Since(last) > 5*time.Second {
			env.progress("[%5.1fs] %d of %d transitions committed, %d of %d plans promoted",
				time.Since(start).Seconds(), committed(ctx), transitions, n, want)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("%d of %d plans promoted when the run stopped: %w", n, want, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// promoted counts the promoted plans at the head of v. seen remembers
// each state file's answer by content, so that a poll parses only the
// state files that changed since the last: the bench runs in the process
// it measures.
func promoted(ctx context.Context, v view, seen map[string]bool) (int, error) {
	t, err := v.Tree(ctx, "")
	if err != nil {
		return 0, err
	}
	entries, err := fs.ReadDir(t.FS, canary.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, next := 0, map[string]bool{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := canary.ReadRepoFile(t.FS, canary.StateDir+"/"+e.Name(), canary.MaxPlanBytes)
		if err != nil {
			return 0, err
		}
		done, ok := seen[string(b)]
		if !ok {
			st, err := canary.ParseState(b)
			done = err == nil && st.Status.Phase == canary.PhasePromoted
		}
		next[string(b)] = done
		if done {
			n++
		}
	}
	clear(seen)
	maps.Copy(seen, next)
	return n, nil
}

// Count is what the trailers of the transition commits say.
type Count struct {
	// Transitions counts the commits with a plan trailer; Distinct the
	// distinct plan/action/step keys among them.
	Transitions, Distinct int
	Duplicates            []string
	// ByAuthor counts the transitions by commit author name.
	ByAuthor map[string]int
}

// Once says whether want transitions were committed, each exactly once.
func (c Count) Once(want int) bool {
	return c.Transitions == want && c.Distinct == want && len(c.Duplicates) == 0
}

// countTransitions reads every transition commit's trailers at the head
// of v and finds the duplicates.
func countTransitions(ctx context.Context, v view) (Count, error) {
	log, err := v.Log(ctx, "", 0)
	if err != nil {
		return Count{}, err
	}
	c := Count{ByAuthor: map[string]int{}}
	seen := map[string]int{}
	for _, commit := range log {
		plan, ok := commit.Trailer(canary.TrailerPlan)
		if !ok {
			continue
		}
		action, _ := commit.Trailer(canary.TrailerAction)
		step, _ := commit.Trailer(canary.TrailerStep)
		seen[plan+"/"+action+"/"+step]++
		c.Transitions++
		name, _, _ := strings.Cut(commit.Author, " <")
		c.ByAuthor[name]++
	}
	c.Distinct = len(seen)
	for k, n := range seen {
		if n > 1 {
			c.Duplicates = append(c.Duplicates, fmt.Sprintf("%s ×%d", k, n))
		}
	}
	slices.Sort(c.Duplicates)
	return c, nil
}

// recorder times each Transact: from the decision (the call) to the
// commit pushed (the return), queueing for the repository included.
type recorder struct {
	*gitops.Repo
	mu          sync.Mutex
	lat         []time.Duration
	first, last time.Time
}

func (r *recorder) Transact(ctx context.Context, fn canary.TransactFunc) (canary.CommitResult, error) {
	start := time.Now()
	res, err := r.Repo.Transact(ctx, fn)
	if err == nil && !res.NoOp {
		end := time.Now()
		r.mu.Lock()
		r.lat = append(r.lat, end.Sub(start))
		if r.first.IsZero() {
			r.first = end
		}
		r.last = end
		r.mu.Unlock()
	}
	return res, err
}

func (r *recorder) latencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lat)
}

// span is when the first and the last transition were pushed.
func (r *recorder) span() (first, last time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first, r.last
}

// committed counts the transitions pushed so far.
func (r *recorder) committed(context.Context) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lat)
}

func noRefresh(context.Context) error { return nil }
