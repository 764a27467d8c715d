package benchfleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/canarybot/canarybot/pkg/gitops"
)

// ReplicasConfig sizes the replicas section: two replica processes, both
// active on the same Plans plans with no lock (the push is the
// compare-and-swap); replica A is SIGKILLed once KillAt of the
// transitions are committed.
type ReplicasConfig struct {
	Env
	Plans, Steps, Workers int
	KillAt                float64
	// Command runs one replica: this binary re-executed with its hidden
	// replica subcommand, which calls RunReplica.
	Command func(ctx context.Context, c ReplicaConfig) *exec.Cmd
}

// ReplicaStats is one replica process as it ended.
type ReplicaStats struct {
	Name string
	// Killed is set when it died of SIGKILL.
	Killed     bool
	CPU        time.Duration
	PeakRSSKiB int64
	Log        string
}

// ReplicasResult is what the replicas section measured.
type ReplicasResult struct {
	Count
	Plans, Promoted int
	Elapsed         time.Duration
	// KilledAt is the transitions committed when replica A was killed.
	KilledAt int
	Replicas []ReplicaStats
	Audit    *audit
}

// replicaProc is one running replica.
type replicaProc struct {
	ReplicaStats
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// RunReplicas runs the two replicas to the end of every rollout.
func RunReplicas(ctx context.Context, cfg ReplicasConfig) (*ReplicasResult, error) {
	if cfg.Command == nil {
		return nil, errors.New("replicas: no Command to start a replica with")
	}
	dir, cleanup, err := cfg.workDir("replicas")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	srv, err := newServer(ctx, dir, []seedCommit{{Message: "seed", Files: planFiles(cfg.Plans, cfg.Steps, "overlays")}})
	if err != nil {
		return nil, err
	}
	defer srv.close()
	watch, err := gitops.OpenReadOnly(ctx, gitops.Options{URL: srv.bare, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := cfg.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	var procs []*replicaProc
	for _, name := range []string{"replica-a", "replica-b"} {
		p, err := startReplica(runCtx, cfg, ReplicaConfig{URL: srv.URL, Dir: filepath.Join(dir, name), Name: name, Workers: cfg.Workers})
		if err != nil {
			return nil, err
		}
		defer p.stop(0)
		procs = append(procs, p)
	}
	res := &ReplicasResult{Plans: cfg.Plans}
	want := cfg.Plans * (cfg.Steps + 1)
	res.KilledAt, err = killMidRun(runCtx, cfg, watch, procs[0], want)
	if err == nil {
		committed := func(ctx context.Context) int { c, _ := countTransitions(ctx, watch); return c.Transitions }
		res.Promoted, err = waitPromoted(runCtx, cfg.Env, watch, fetchOnly(watch), cfg.Plans, want, committed)
	}
	procs[1].stop(30 * time.Second)
	res.Elapsed = time.Since(start)
	for _, p := range procs {
		res.Replicas = append(res.Replicas, p.ReplicaStats)
	}
	return res, errors.Join(err, res.settle(ctx, srv, watch))
}

func fetchOnly(r *gitops.Reader) func(context.Context) error {
	return func(ctx context.Context) error { _, err := r.Fetch(ctx); return err }
}

// killMidRun SIGKILLs p once at least cfg.KillAt of want transitions are
// committed, and returns how many were.
func killMidRun(ctx context.Context, cfg ReplicasConfig, watch *gitops.Reader, p *replicaProc, want int) (int, error) {
	at := max(1, int(math.Ceil(cfg.KillAt*float64(want))))
	for {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting to kill %s: %w", p.Name, ctx.Err())
		case <-p.done:
			return 0, fmt.Errorf("%s exited before it was killed: %w (log %s)", p.Name, p.err, p.Log)
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := watch.Fetch(ctx); err != nil {
			continue
		}
		c, err := countTransitions(ctx, watch)
		if err != nil || c.Transitions < at {
			continue
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return 0, fmt.Errorf("kill %s: %w", p.Name, err)
		}
		<-p.done
		cfg.progress("SIGKILLed %s with %d of %d transitions committed", p.Name, c.Transitions, want)
		return c.Transitions, nil
	}
}

// startReplica starts one replica process, its output in a log file.
func startReplica(ctx context.Context, cfg ReplicasConfig, rc ReplicaConfig) (*replicaProc, error) {
	p := &replicaProc{ReplicaStats: ReplicaStats{Name: rc.Name, Log: rc.Dir + ".log"}, done: make(chan struct{})}
	log, err := os.Create(p.Log)
	if err != nil {
		return nil, fmt.Errorf("replica log: %w", err)
	}
	p.cmd = cfg.Command(ctx, rc)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", rc.Name, err)
	}
	go func() {
		defer close(p.done)
		defer log.Close()
		p.err = p.cmd.Wait()
		p.CPU, p.PeakRSSKiB = processCPU(p.cmd.ProcessState)
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			p.Killed = ws.Signaled() && ws.Signal() == syscall.SIGKILL
		}
	}()
	return p, nil
}

// stop sends SIGTERM and waits up to grace for the replica to exit, then
// kills it. With no grace it only kills one still running.
func (p *replicaProc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	if grace > 0 {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// settle reads the final head: transitions and the audit.
func (r *ReplicasResult) settle(ctx context.Context, srv *server, watch *gitops.Reader) error {
	if _, err := watch.Fetch(ctx); err != nil {
		return err
	}
	c, err := countTransitions(ctx, watch)
	if err != nil {
		return err
	}
	r.Count = c
	r.Audit, err = srv.audit(ctx)
	return err
}

// ReportReplicas prints the replicas section.
func ReportReplicas(w io.Writer, cfg ReplicasConfig, r *ReplicasResult) bool {
	want := cfg.Plans * (cfg.Steps + 1)
	s := newSection(w, "replicas: 2 replica processes, both active, no lock, on %d plans × %d steps; replica-a SIGKILLed mid-run; %s",
		cfg.Plans, cfg.Steps, r.Elapsed.Round(time.Millisecond))
	s.countRows(r.Promoted, r.Plans, r.Count, want)
	s.check("double transitions (one plan/action/step twice)", fmt.Sprint(len(r.Duplicates)), "0", len(r.Duplicates) == 0)
	killed := len(r.Replicas) > 0 && r.Replicas[0].Killed
	s.check("replica-a SIGKILLed mid-run, at transition", fmt.Sprintf("%d of %d", r.KilledAt, want), "0 < n < all",
		killed && r.KilledAt > 0 && r.KilledAt < want)
	s.auditRows(r.Audit)
	for _, p := range r.Replicas {
		s.info("transitions committed by "+p.Name, fmt.Sprint(r.ByAuthor[p.Name]))
		s.info(p.Name+" CPU, peak RSS", fmt.Sprintf("%s, %s", p.CPU.Round(10*time.Millisecond), mib(p.PeakRSSKiB)))
	}
	return s.ok
}
