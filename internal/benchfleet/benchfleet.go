// Package benchfleet measures one canarybot process driving many plans in
// one repository (`make bench-fleet`): a real bare repository served over
// smart HTTP by `git http-backend`, the real fleet runner, engines and
// gitops commits, and stand-ins for everything outside Git (an Argo CD
// that has synced every commit, gates that pass, a registry offering one
// new version per model, a renderer writing one bot-owned file per plan).
package benchfleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/fleet"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// Config sizes a run.
type Config struct {
	Plans, Steps, Workers int
	// Dir holds the repositories; a temporary directory when empty.
	Dir string
	// Timeout bounds the run.
	Timeout  time.Duration
	Progress func(format string, args ...any)
}

// Result is what a run measured.
type Result struct {
	Plans, Promoted       int
	Transitions, Distinct int
	Duplicates            []string
	Elapsed               time.Duration
	// Latencies are decision → commit pushed, one per pushed transition.
	Latencies  []time.Duration
	PeakRSSKiB int64
	Pushes     int
}

// Run seeds a repository with cfg.Plans plans of cfg.Steps steps and
// drives them all to promotion with one fleet.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "canarybot-bench-fleet-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	}
	url, pushes, stop, err := seed(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer stop()
	repo, err := gitops.Open(ctx, gitops.Options{URL: url, Dir: filepath.Join(cfg.Dir, "clone"), Logger: slog.New(slog.DiscardHandler),
		Retry: gitops.Retry{Attempts: 20, Initial: 5 * time.Millisecond, Max: 200 * time.Millisecond}})
	if err != nil {
		return nil, err
	}
	rec := &recorder{Repo: repo}
	f, err := fleet.New(fleet.Config{Workers: cfg.Workers, Poll: 5 * time.Second, MinPoll: 50 * time.Millisecond,
		Clock: canary.SystemClock{}, Log: slog.New(slog.DiscardHandler),
		NewEngine: func(string, *canary.CanaryPlan) *canary.Engine {
			e := edges{}
			return &canary.Engine{Renderer: e, Sync: e, Gates: e, Approvals: e, Artifacts: e, Stable: e.stable,
				Clock: canary.SystemClock{}, Log: slog.New(slog.DiscardHandler), Poll: 5 * time.Second, MinPoll: 50 * time.Millisecond}
		}})
	if err != nil {
		return nil, err
	}
	if err := f.Add("bench", rec); err != nil {
		return nil, err
	}
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(runCtx) }()
	res := &Result{Plans: cfg.Plans}
	err = waitPromoted(runCtx, repo, cfg, res, start, func() int { return len(rec.latencies()) })
	cancel()
	<-done
	res.Elapsed = time.Since(start)
	res.Latencies = rec.latencies()
	res.Pushes = int(pushes.Load())
	res.PeakRSSKiB = peakRSS()
	if cerr := count(ctx, repo, res); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return res, err
}

// waitPromoted polls the state files until every plan is promoted.
func waitPromoted(ctx context.Context, repo *gitops.Repo, cfg Config, res *Result, start time.Time, committed func() int) error {
	last := time.Now()
	for {
		n, err := promoted(ctx, repo)
		if err == nil {
			res.Promoted = n
		}
		if n == cfg.Plans {
			return nil
		}
		if cfg.Progress != nil && time.Since(last) > 5*time.Second {
			cfg.Progress("[%5.1fs] %d of %d transitions committed, %d of %d plans promoted", time.Since(start).Seconds(),
				committed(), cfg.Plans*(cfg.Steps+1), n, cfg.Plans)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d plans promoted when the run stopped: %w", n, cfg.Plans, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// promoted counts the promoted plans at the head as last fetched.
func promoted(ctx context.Context, repo *gitops.Repo) (int, error) {
	t, err := repo.Tree(ctx, "")
	if err != nil {
		return 0, err
	}
	entries, err := readDir(t, canary.StateDir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		b, err := canary.ReadRepoFile(t.FS, canary.StateDir+"/"+e, canary.MaxPlanBytes)
		if err != nil {
			return 0, err
		}
		if st, err := canary.ParseState(b); err == nil && st.Status.Phase == canary.PhasePromoted {
			n++
		}
	}
	return n, nil
}

// count reads every transition commit's trailers and finds duplicates.
func count(ctx context.Context, repo *gitops.Repo, res *Result) error {
	log, err := repo.Log(ctx, "", 0)
	if err != nil {
		return err
	}
	seen := map[string]int{}
	for _, c := range log {
		plan, ok := c.Trailer(canary.TrailerPlan)
		if !ok {
			continue
		}
		action, _ := c.Trailer(canary.TrailerAction)
		step, _ := c.Trailer(canary.TrailerStep)
		seen[plan+"/"+action+"/"+step]++
		res.Transitions++
	}
	res.Distinct = len(seen)
	for k, n := range seen {
		if n > 1 {
			res.Duplicates = append(res.Duplicates, fmt.Sprintf("%s ×%d", k, n))
		}
	}
	slices.Sort(res.Duplicates)
	return nil
}

// seed creates the bare repository with the plans and serves it over
// smart HTTP with the real git http-backend.
func seed(ctx context.Context, cfg Config) (string, *atomic.Int64, func(), error) {
	bare := filepath.Join(cfg.Dir, "gitops.git")
	work := filepath.Join(cfg.Dir, "seed")
	if err := gitCmd(ctx, cfg.Dir, "init", "--quiet", "--bare", "-b", "main", bare); err != nil {
		return "", nil, nil, err
	}
	if err := gitCmd(ctx, bare, "config", "http.receivepack", "true"); err != nil {
		return "", nil, nil, err
	}
	for i := range cfg.Plans {
		name := fmt.Sprintf("model-%04d", i)
		p := filepath.Join(work, ".canarybot", "plans", name+".yaml")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", nil, nil, err
		}
		if err := os.WriteFile(p, []byte(planYAML(name, cfg.Steps)), 0o644); err != nil {
			return "", nil, nil, err
		}
	}
	for _, args := range [][]string{{"init", "--quiet", "-b", "main"}, {"add", "-A"},
		{"-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "--quiet", "-m", "seed"},
		{"push", "--quiet", bare, "HEAD:main"}} {
		if err := gitCmd(ctx, work, args...); err != nil {
			return "", nil, nil, err
		}
	}
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return "", nil, nil, fmt.Errorf("git CLI: %w", err)
	}
	backend := &cgi.Handler{Path: gitBin, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + cfg.Dir, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + cfg.Dir}}
	var pushes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/git-receive-pack") {
			pushes.Add(1)
		}
		backend.ServeHTTP(w, req)
	}))
	return srv.URL + "/gitops.git", &pushes, srv.Close, nil
}

// planYAML is a plan of steps setWeight steps ending at 100%.
func planYAML(name string, steps int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: %[1]s}
spec:
  model:
    name: %[1]s
    source: {static: {uri: "oci://registry.local/%[1]s@sha256:%[2]s", version: "2.0.0"}}
  traffic: {mode: kserve, kserve: {inferenceService: %[1]s}}
  overlay: overlays/%[1]s
  argocd: {application: %[1]s}
  steps:
`, name, strings.Repeat("2", 64))
	for i := 1; i <= steps; i++ {
		fmt.Fprintf(&b, "  - setWeight: %d\n", 100*i/steps)
	}
	return b.String()
}

func gitCmd(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// recorder times each Transact: from the decision (the call) to the
// commit pushed (the return), queueing for the repository included.
type recorder struct {
	*gitops.Repo
	mu  sync.Mutex
	lat []time.Duration
}

func (r *recorder) Transact(ctx context.Context, fn canary.TransactFunc) (canary.CommitResult, error) {
	start := time.Now()
	res, err := r.Repo.Transact(ctx, fn)
	if err == nil && !res.NoOp {
		r.mu.Lock()
		r.lat = append(r.lat, time.Since(start))
		r.mu.Unlock()
	}
	return res, err
}

func (r *recorder) latencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lat)
}
