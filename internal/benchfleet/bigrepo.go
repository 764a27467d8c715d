package benchfleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/kustomize"
)

// BigRepoConfig sizes the big-repository section: a history of Commits
// commits over Overlays real overlays, and Steps canary steps measured
// each way.
type BigRepoConfig struct {
	Env
	Commits, Overlays, Steps int
}

// StepTimes are one way of doing the canary steps, timed.
type StepTimes struct {
	// Total is each whole step; Render its patch and krusty build check
	// (Renderer.RenderOverlay); the rest is commit and push.
	Total, Render []time.Duration
	// CPU is this process's CPU time over the steps (canarybot's only:
	// the git CLI's processes and the server's cannot be told apart).
	CPU time.Duration
}

// git is the commit-and-push part of each step.
func (s StepTimes) git() []time.Duration {
	out := make([]time.Duration, len(s.Total))
	for i := range s.Total {
		out[i] = s.Total[i] - s.Render[i]
	}
	return out
}

// BigRepoResult is what the big-repository section measured.
type BigRepoResult struct {
	Commits, Overlays, Files int
	Seed, Clone              time.Duration
	// Bot is canarybot's step (pkg/kustomize, gitops.Repo); CLI the same
	// step with the git CLI in a work tree.
	Bot, CLI StepTimes
	// Landed counts the commits the steps added to the remote.
	Landed int
	Audit  *audit
}

// RunBigRepo seeds the big repository and times the steps, alternating
// canarybot's and the git CLI's on the same repository.
func RunBigRepo(ctx context.Context, cfg BigRepoConfig) (*BigRepoResult, error) {
	dir, cleanup, err := cfg.workDir("bigrepo")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	ctx, cancel := cfg.withTimeout(ctx)
	defer cancel()
	res := &BigRepoResult{Commits: cfg.Commits, Overlays: cfg.Overlays}
	t0 := time.Now()
	history, err := bigHistory(cfg.Commits, cfg.Overlays)
	if err != nil {
		return nil, err
	}
	res.Files = len(history[0].Files)
	srv, err := newServer(ctx, dir, history)
	if err != nil {
		return nil, err
	}
	defer srv.close()
	res.Seed = time.Since(t0)
	cfg.progress("big repository: %d commits, %d overlays, %d files seeded in %s", cfg.Commits, cfg.Overlays, res.Files, res.Seed.Round(time.Millisecond))
	t0 = time.Now()
	repo, err := gitops.Open(ctx, gitops.Options{URL: srv.URL, Dir: filepath.Join(dir, "clone"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	res.Clone = time.Since(t0)
	cli := filepath.Join(dir, "cli")
	if err := gitCmd(ctx, dir, "clone", "--quiet", srv.URL, cli); err != nil {
		return nil, err
	}
	if err := res.steps(ctx, cfg, repo, cli); err != nil {
		return res, err
	}
	return res, res.settle(ctx, srv, cfg.Commits)
}

// steps runs cfg.Steps steps each way, on overlays spread over the repo.
func (r *BigRepoResult) steps(ctx context.Context, cfg BigRepoConfig, repo *gitops.Repo, cli string) error {
	renderer := kustomize.NewRenderer(kustomize.NewBuilder())
	for i := range cfg.Steps {
		name, tp := bigOverlay(i*97+1, cfg.Overlays)
		if _, err := repo.Fetch(ctx); err != nil { // the CLI's last commit, not timed
			return err
		}
		if err := r.Bot.botStep(ctx, repo, renderer, name, tp, stepDesired(i)); err != nil {
			return fmt.Errorf("canarybot step %d: %w", i, err)
		}
		if err := gitCmd(ctx, cli, "pull", "--quiet", "--ff-only", "origin", "main"); err != nil {
			return err
		}
		if err := r.CLI.cliStep(ctx, cli, renderer, name, tp, stepDesired(i+cfg.Steps)); err != nil {
			return fmt.Errorf("git CLI step %d: %w", i, err)
		}
		if (i+1)%10 == 0 {
			p50, _ := quantiles(r.Bot.Total)
			c50, _ := quantiles(r.CLI.Total)
			cfg.progress("big repository: %d of %d steps each way (p50 so far: canarybot %s, git CLI %s)", i+1, cfg.Steps, ms(p50), ms(c50))
		}
	}
	return nil
}

// botStep is canarybot's step: render and check the overlay at the head,
// then commit and push with gitops.Repo.
func (s *StepTimes) botStep(ctx context.Context, repo *gitops.Repo, r *kustomize.Renderer, name string, tp template, d canary.Desired) error {
	var render time.Duration
	cpu0 := cpuNow()
	start := time.Now()
	res, err := repo.Transact(ctx, func(ctx context.Context, t canary.Tree) (*canary.Change, error) {
		r0 := time.Now()
		files, err := r.RenderOverlay(ctx, t.FS, overlayDir(name), tp.traffic(name), d)
		render += time.Since(r0)
		if err != nil {
			return nil, err
		}
		return &canary.Change{Files: files, Subject: fmt.Sprintf("canary(%s): weight %d%%", name, d.CanaryWeight),
			Trailers: []canary.Trailer{{Key: canary.TrailerPlan, Value: name}}}, nil
	})
	total := time.Since(start)
	s.CPU += cpuNow().since(cpu0).self
	if err == nil && res.NoOp {
		err = errors.New("nothing to commit")
	}
	s.Total, s.Render = append(s.Total, total), append(s.Render, render)
	return err
}

// cliStep is the same step with the git CLI: render and check the overlay
// in the work tree, write its files, git add, commit and push.
func (s *StepTimes) cliStep(ctx context.Context, dir string, r *kustomize.Renderer, name string, tp template, d canary.Desired) error {
	start := time.Now()
	files, err := r.RenderOverlay(ctx, os.DirFS(dir), overlayDir(name), tp.traffic(name), d)
	render := time.Since(start)
	if err != nil {
		return err
	}
	paths := slices.Sorted(maps.Keys(files))
	for _, p := range paths {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(p)), files[p], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	msg := fmt.Sprintf("canary(%s): weight %d%%\n\n%s: %s\n", name, d.CanaryWeight, canary.TrailerPlan, name)
	for _, args := range [][]string{append([]string{"add", "--"}, paths...), {"commit", "--quiet", "-m", msg}, {"push", "--quiet", "origin", "main"}} {
		if err := gitCmd(ctx, dir, args...); err != nil {
			return err
		}
	}
	s.Total, s.Render = append(s.Total, time.Since(start)), append(s.Render, render)
	return nil
}

// settle checks that every step landed, and audits the branch.
func (r *BigRepoResult) settle(ctx context.Context, srv *server, seeded int) error {
	out, err := gitOut(ctx, srv.bare, "rev-list", "--count", "main")
	if err != nil {
		return err
	}
	var n int
	if _, err := fmt.Sscan(strings.TrimSpace(out), &n); err != nil {
		return fmt.Errorf("rev-list --count: %w", err)
	}
	r.Landed = n - seeded
	r.Audit, err = srv.audit(ctx)
	return err
}

// ReportBigRepo prints the big-repository section.
func ReportBigRepo(w io.Writer, cfg BigRepoConfig, r *BigRepoResult) bool {
	s := newSection(w, "big repository: one canary step on %d commits × %d overlays (%d files), %d steps each way, alternating",
		r.Commits, r.Overlays, r.Files, cfg.Steps)
	bot50, bot99 := quantiles(r.Bot.Total)
	cli50, cli99 := quantiles(r.CLI.Total)
	s.check("steps landed on the remote", fmt.Sprintf("%d/%d", r.Landed, 2*cfg.Steps), targetAll, r.Landed == 2*cfg.Steps)
	s.auditRows(r.Audit)
	s.check("canarybot step, p50", ms(bot50), "≤ "+ms(TargetStepP50), len(r.Bot.Total) > 0 && bot50 <= TargetStepP50)
	s.check("canarybot step, p99", ms(bot99), "≤ "+ms(TargetStepP99), len(r.Bot.Total) > 0 && bot99 <= TargetStepP99)
	rb50, rb99 := quantiles(r.Bot.Render)
	gb50, gb99 := quantiles(r.Bot.git())
	s.info("  of which patch + krusty check, p50 / p99", ms(rb50)+" / "+ms(rb99))
	s.info("  of which commit + push (gitops.Repo), p50 / p99", ms(gb50)+" / "+ms(gb99))
	s.info("git CLI step, p50", ms(cli50))
	s.info("git CLI step, p99", ms(cli99))
	gc50, gc99 := quantiles(r.CLI.git())
	s.info("  of which write + add + commit + push, p50 / p99", ms(gc50)+" / "+ms(gc99))
	s.info("ratio canarybot / git CLI, whole step, p50", ratio(bot50, cli50))
	s.info("ratio canarybot / git CLI, whole step, p99", ratio(bot99, cli99))
	s.info("ratio canarybot / git CLI, commit + push, p50", ratio(gb50, gc50))
	s.info("ratio canarybot / git CLI, commit + push, p99", ratio(gb99, gc99))
	if n := len(r.Bot.Total); n > 0 {
		s.info("canarybot CPU per step", ms(r.Bot.CPU/time.Duration(n)))
	}
	s.info("seed (git fast-import), canarybot's clone", r.Seed.Round(time.Millisecond).String()+", "+r.Clone.Round(time.Millisecond).String())
	s.note("a step: patch the bot-owned overlay files and check them with a krusty build (pkg/kustomize),")
	s.note("then commit and push: canarybot with gitops.Repo, or the git CLI (write, git add, commit, push) in a work tree")
	return s.ok
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(a)/float64(b))
}
