package benchfleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"time"
)

// HumansConfig sizes the human-commits section: Commits human commits
// pushed with the git CLI while Plans plans roll out, Pause apart. Each
// step's revision takes the stand-in Argo CD about Sync to sync (0.5–1.5
// × Sync by plan), as a real one takes time: the rollouts then last long
// enough for the human commits to land among the transitions, not after
// them.
type HumansConfig struct {
	Env
	Plans, Steps, Workers, Commits int
	Pause, Sync                    time.Duration
}

// HumansResult is what the human-commits section measured.
type HumansResult struct {
	Count
	humanCheck
	Plans, Promoted int
	Elapsed         time.Duration
	// Commits counts the human commits pushed; Retries their refusals,
	// each followed by `git pull --rebase`; DuringRollouts those that
	// landed before the last transition was pushed.
	Commits, Retries, DuringRollouts int
	Audit                            *audit
	Latencies                        []time.Duration
}

// RunHumans rolls cfg.Plans plans out with pkg/kustomize over real
// overlays while a person pushes cfg.Commits commits to the same branch.
func RunHumans(ctx context.Context, cfg HumansConfig) (*HumansResult, error) {
	dir, cleanup, err := cfg.workDir("humans")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	seed, names, err := humanSeed(cfg.Plans, cfg.Steps)
	if err != nil {
		return nil, err
	}
	srv, err := newServer(ctx, dir, []seedCommit{{Message: "seed", Files: seed}})
	if err != nil {
		return nil, err
	}
	defer srv.close()
	h, err := newHuman(ctx, srv.URL, filepath.Join(dir, "human"), names)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := cfg.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	d, err := startDriver(runCtx, driverConfig{URL: srv.URL, Dir: filepath.Join(dir, "clone"), Author: "canarybot",
		Workers: cfg.Workers, Kustomize: true, SyncDelay: cfg.Sync, Poll: max(cfg.Sync/10, 100*time.Millisecond)})
	if err != nil {
		return nil, err
	}
	humansDone := make(chan error, 1)
	go func() { humansDone <- runHuman(runCtx, cfg, h) }()
	res := &HumansResult{Plans: cfg.Plans}
	want := cfg.Plans * (cfg.Steps + 1)
	res.Promoted, err = waitPromoted(runCtx, cfg.Env, d.repo, noRefresh, cfg.Plans, want, d.rec.committed)
	herr := <-humansDone
	d.stop()
	res.Elapsed = time.Since(start)
	return res, errors.Join(err, herr, res.settle(ctx, srv, d, h))
}

// runHuman pushes the human commits, cfg.Pause apart.
func runHuman(ctx context.Context, cfg HumansConfig, h *human) error {
	start := time.Now()
	for i := range cfg.Commits {
		if err := h.commit(ctx, i); err != nil {
			return err
		}
		if (i+1)%20 == 0 {
			cfg.progress("[%5.1fs] %d of %d human commits pushed (%d refused and rebased)",
				time.Since(start).Seconds(), i+1, cfg.Commits, h.retries)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("human commits: %w", ctx.Err())
		case <-time.After(cfg.Pause):
		}
	}
	return nil
}

// settle reads the final head: transitions, human commits, the audit.
func (r *HumansResult) settle(ctx context.Context, srv *server, d *driver, h *human) error {
	r.Latencies = d.rec.latencies()
	r.Commits, r.Retries = len(h.pushed), h.retries
	_, last := d.rec.span()
	for _, c := range h.pushed {
		if c.at.Before(last) {
			r.DuringRollouts++
		}
	}
	if _, err := d.repo.Fetch(ctx); err != nil {
		return err
	}
	c, err := countTransitions(ctx, d.repo)
	if err != nil {
		return err
	}
	r.Count = c
	if r.humanCheck, err = h.check(ctx, srv.bare); err != nil {
		return err
	}
	r.Audit, err = srv.audit(ctx)
	return err
}

// humanSeed is the plans and, for each, a real base and overlay (the
// repository's own manifests/fraud-detector, renamed), and a few team
// files.
func humanSeed(plans, steps int) (map[string][]byte, []string, error) {
	files := planFiles(plans, steps, "manifests/overlays")
	names := make([]string, plans)
	for i := range plans {
		names[i] = modelName(i)
		f, err := kserveTemplate.files(names[i])
		if err != nil {
			return nil, nil, err
		}
		maps.Copy(files, f)
	}
	for i := range 10 {
		files[fmt.Sprintf("teams/team-%02d/NOTES.md", i)] = fmt.Appendf(nil, "# Team %d\n", i)
	}
	return files, names, nil
}

// ReportHumans prints the human-commits section.
func ReportHumans(w io.Writer, cfg HumansConfig, r *HumansResult) bool {
	want := cfg.Plans * (cfg.Steps + 1)
	s := newSection(w, "humans: %d human commits (git CLI, plain push, pull --rebase on refusal) during %d rollouts × %d steps, pkg/kustomize, Argo CD sync ~%s, %s",
		cfg.Commits, cfg.Plans, cfg.Steps, cfg.Sync, r.Elapsed.Round(time.Millisecond))
	s.countRows(r.Promoted, r.Plans, r.Count, want)
	s.check("human commits pushed", fmt.Sprintf("%d/%d", r.Commits, cfg.Commits), targetAll, r.Commits == cfg.Commits)
	s.check("human commits reachable from the final head", fmt.Sprintf("%d/%d", r.Commits-len(r.Unreachable), r.Commits),
		targetAll, r.Commits > 0 && len(r.Unreachable) == 0)
	s.check("human-written files intact at the final head", fmt.Sprint(len(r.Clobbered))+" changed", "0 changed", len(r.Clobbered) == 0)
	s.auditRows(r.Audit)
	s.info("human commits landed while rollouts ran", fmt.Sprintf("%d/%d", r.DuringRollouts, r.Commits))
	s.info("human pushes refused, then pull --rebase", fmt.Sprint(r.Retries))
	p50, p99 := quantiles(r.Latencies)
	s.info("decision → commit pushed, p50", ms(p50))
	s.info("decision → commit pushed, p99", ms(p99))
	for _, p := range r.Clobbered {
		s.note("human file changed: %s", p)
	}
	for _, sha := range r.Unreachable {
		s.note("human commit lost: %s", sha)
	}
	return s.ok
}
