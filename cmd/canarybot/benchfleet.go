package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/canarybot/canarybot/internal/benchfleet"
)

// The sections of bench-fleet, in the order they run.
const (
	sectionFleet      = "fleet"
	sectionHumans     = "humans"
	sectionReplicas   = "replicas"
	sectionBigRepo    = "big-repo"
	sectionProjection = "projection"
)

func allSections() []string {
	return []string{sectionFleet, sectionHumans, sectionReplicas, sectionBigRepo, sectionProjection}
}

type benchFleetOptions struct {
	sections, skip        []string
	plans, steps, workers int
	humanPlans, humans    int
	humanPause, humanSync time.Duration
	replicaPlans          int
	killAt                float64
	bigCommits, bigOvls   int
	bigSteps              int
	project               benchfleet.ProjectionConfig
	replicaMemMiB         int64
	timeout               time.Duration
	failOnTargets         bool
	cpuProfile            string
}

func newBenchFleet(g *globals) *cobra.Command {
	o := &benchFleetOptions{}
	c := &cobra.Command{
		Use:   "bench-fleet [--plans N] [--steps N] [--sections LIST]",
		Short: "Measure canarybot driving many plans (make bench-fleet)",
		Long: `bench-fleet measures canarybot against real bare repositories served by the
real git http-backend, which refuse every non-fast-forward update, and prints
each number beside its target. Sections (--sections, --skip):

  fleet       one process drives --plans plans × --steps steps of one
              repository to promotion: each transition committed once, p99
              decision → push, RSS, CPU per transition
  humans      --human-commits commits pushed with the git CLI (plain push,
              pull --rebase on refusal) during --human-plans rollouts over
              real overlays: every human commit kept, no force push
  replicas    two replica processes, both active with no lock, on
              --replica-plans plans; one SIGKILLed mid-run: no double
              transition, every rollout completes
  big-repo    one canary step (pkg/kustomize patch + krusty check, commit,
              push) on --big-commits commits × --big-overlays overlays,
              beside the same step with the git CLI
  projection  what --project-plans plans in --project-repos repositories
              would need, computed from the fleet section's costs

Argo CD, the gates and the registry are stand-ins that always agree.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), g)
		},
	}
	o.addFlags(c.Flags())
	c.AddCommand(newBenchFleetReplica(g))
	return c
}

func (o *benchFleetOptions) addFlags(f *pflag.FlagSet) {
	f.StringSliceVar(&o.sections, "sections", allSections(), "sections to run: "+strings.Join(allSections(), ","))
	f.StringSliceVar(&o.skip, "skip", nil, "sections not to run")
	f.IntVar(&o.plans, "plans", 200, "fleet: plans in the repository (issue 13 sizes it at 1000)")
	f.IntVar(&o.steps, "steps", 5, "setWeight steps per plan (fleet, humans, replicas)")
	f.IntVar(&o.workers, "workers", 16, "plans reconciled at once, per process")
	f.IntVar(&o.humanPlans, "human-plans", 50, "humans: plans rolling out")
	f.IntVar(&o.humans, "human-commits", 100, "humans: commits pushed with the git CLI during the rollouts")
	f.DurationVar(&o.humanPause, "human-pause", 200*time.Millisecond, "humans: wait between two human commits")
	f.DurationVar(&o.humanSync, "human-sync", 20*time.Second, "humans: how long the stand-in Argo CD takes to sync a step (0.5–1.5× by plan)")
	f.IntVar(&o.replicaPlans, "replica-plans", 100, "replicas: plans driven by both replicas")
	f.Float64Var(&o.killAt, "kill-at", 0.3, "replicas: share of the transitions committed when replica-a is SIGKILLed")
	f.IntVar(&o.bigCommits, "big-commits", 2000, "big-repo: commits of history")
	f.IntVar(&o.bigOvls, "big-overlays", 500, "big-repo: overlays (with their bases)")
	f.IntVar(&o.bigSteps, "big-steps", 50, "big-repo: steps measured each way")
	f.IntVar(&o.project.Plans, "project-plans", 10000, "projection: plans")
	f.IntVar(&o.project.Repos, "project-repos", 100, "projection: repositories")
	f.DurationVar(&o.project.StepInterval, "step-interval", 5*time.Minute, "projection: time between two transitions of a plan")
	f.IntVar(&o.project.CoresPerReplica, "replica-cores", 2, "projection: cores per replica")
	f.Int64Var(&o.replicaMemMiB, "replica-memory-mib", 1024, "projection: memory per replica, MiB")
	f.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up on a section after this long")
	f.BoolVar(&o.failOnTargets, "fail-on-targets", false, "exit 1 when a target is missed")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
}

// selected returns the sections to run, or an error naming an unknown one.
func (o *benchFleetOptions) selected() (map[string]bool, error) {
	on := map[string]bool{}
	for _, list := range [][]string{o.sections, o.skip} {
		for _, s := range list {
			if !slices.Contains(allSections(), s) {
				return nil, fmt.Errorf("unknown section %q: want %s", s, strings.Join(allSections(), ", "))
			}
		}
	}
	for _, s := range o.sections {
		on[s] = !slices.Contains(o.skip, s)
	}
	return on, nil
}

func (o *benchFleetOptions) run(ctx context.Context, g *globals) error {
	on, err := o.selected()
	if err != nil {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	env := benchfleet.Env{Timeout: o.timeout, Progress: func(format string, args ...any) {
		fmt.Fprintf(g.stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}}
	b := &benchRun{o: o, g: g, env: env, met: true}
	for _, s := range allSections() {
		if on[s] {
			env.Progress("section %s", s)
			b.errs = append(b.errs, b.section(ctx, s))
		}
	}
	if err := errors.Join(b.errs...); err != nil {
		return err
	}
	if !b.met && o.failOnTargets {
		return &exitError{code: 1}
	}
	return nil
}

// benchRun carries one bench-fleet run from section to section.
type benchRun struct {
	o    *benchFleetOptions
	g    *globals
	env  benchfleet.Env
	met  bool
	errs []error
	// costs and stepCPU feed the projection.
	costs   *benchfleet.Costs
	stepCPU time.Duration
}

// section runs one section and prints its report.
func (b *benchRun) section(ctx context.Context, name string) error {
	o, w := b.o, b.g.stdout
	switch name {
	case sectionFleet:
		cfg := benchfleet.Config{Env: b.env, Plans: o.plans, Steps: o.steps, Workers: o.workers}
		res, err := benchfleet.Run(ctx, cfg)
		if res != nil {
			b.met = benchfleet.Report(w, cfg, res) && b.met
			c := res.Costs()
			b.costs = &c
		}
		return wrapSection(name, err)
	case sectionHumans:
		cfg := benchfleet.HumansConfig{Env: b.env, Plans: o.humanPlans, Steps: o.steps, Workers: o.workers, Commits: o.humans,
			Pause: o.humanPause, Sync: o.humanSync}
		res, err := benchfleet.RunHumans(ctx, cfg)
		if res != nil {
			b.met = benchfleet.ReportHumans(w, cfg, res) && b.met
		}
		return wrapSection(name, err)
	case sectionReplicas:
		cfg := benchfleet.ReplicasConfig{Env: b.env, Plans: o.replicaPlans, Steps: o.steps, Workers: o.workers, KillAt: o.killAt,
			Command: replicaCommand}
		res, err := benchfleet.RunReplicas(ctx, cfg)
		if res != nil {
			b.met = benchfleet.ReportReplicas(w, cfg, res) && b.met
		}
		return wrapSection(name, err)
	case sectionBigRepo:
		cfg := benchfleet.BigRepoConfig{Env: b.env, Commits: o.bigCommits, Overlays: o.bigOvls, Steps: o.bigSteps}
		res, err := benchfleet.RunBigRepo(ctx, cfg)
		if res != nil {
			b.met = benchfleet.ReportBigRepo(w, cfg, res) && b.met
			if n := len(res.Bot.Total); n > 0 {
				b.stepCPU = res.Bot.CPU / time.Duration(n)
			}
		}
		return wrapSection(name, err)
	default:
		return b.projection()
	}
}

// projection prints the projection from the fleet section's costs.
func (b *benchRun) projection() error {
	if b.costs == nil || b.costs.Transitions == 0 {
		fmt.Fprintf(b.g.stdout, "\nprojection: skipped, it needs the fleet section's measured costs\n")
		return nil
	}
	p := b.o.project
	p.MemoryPerReplicaKiB = b.o.replicaMemMiB * 1024
	p.StepCPU = b.stepCPU
	b.met = benchfleet.ReportProjection(b.g.stdout, *b.costs, p, benchfleet.Project(*b.costs, p)) && b.met
	return nil
}

func wrapSection(name string, err error) error {
	if err != nil {
		return fmt.Errorf("bench-fleet %s: %w", name, err)
	}
	return nil
}

// replicaCommand re-executes this binary as one replica of the replicas
// section.
func replicaCommand(ctx context.Context, c benchfleet.ReplicaConfig) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.CommandContext(ctx, exe, append([]string{"bench-fleet", "replica"}, c.Args()...)...)
}

// newBenchFleetReplica is the hidden subcommand the replicas section runs
// in each replica process.
func newBenchFleetReplica(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:                "replica --remote URL --dir DIR [--name NAME] [--workers N]",
		Short:              "One replica of bench-fleet's replicas section (run by bench-fleet itself)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := benchfleet.ParseReplicaArgs(args)
			if err != nil {
				return err
			}
			return benchfleet.RunReplica(cmd.Context(), c, g.stderr)
		},
	}
}
