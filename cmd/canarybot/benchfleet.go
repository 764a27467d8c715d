package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/canarybot/canarybot/internal/benchfleet"
)

type benchFleetOptions struct {
	plans, steps, workers int
	timeout               time.Duration
	failOnTargets         bool
	cpuProfile            string
}

func newBenchFleet(g *globals) *cobra.Command {
	o := &benchFleetOptions{}
	c := &cobra.Command{
		Use:   "bench-fleet [--plans N] [--steps N]",
		Short: "Measure one process driving many plans in one repository (make bench-fleet)",
		Long: `bench-fleet seeds a bare repository with --plans plans, serves it with the real
git http-backend, and drives every plan through --steps steps to promotion
with one fleet, the real engines and real commits; Argo CD, the gates and the
registry are stand-ins that always agree. It prints the numbers beside the
targets: every plan promoted with each transition committed once, p99 from
decision to commit pushed, peak RSS.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), g)
		},
	}
	c.Flags().IntVar(&o.plans, "plans", 1000, "plans in the repository")
	c.Flags().IntVar(&o.steps, "steps", 5, "setWeight steps per plan")
	c.Flags().IntVar(&o.workers, "workers", 16, "plans reconciled at once")
	c.Flags().DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	c.Flags().BoolVar(&o.failOnTargets, "fail-on-targets", false, "exit 1 when a target is missed")
	c.Flags().StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	return c
}

func (o *benchFleetOptions) run(ctx context.Context, g *globals) error {
	cfg := benchfleet.Config{Plans: o.plans, Steps: o.steps, Workers: o.workers, Timeout: o.timeout,
		Progress: func(format string, args ...any) { fmt.Fprintf(g.stderr, format+"\n", args...) }}
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
	res, err := benchfleet.Run(ctx, cfg)
	if res != nil {
		if met := benchfleet.Report(g.stdout, cfg, res); !met && o.failOnTargets {
			return &exitError{code: 1}
		}
	}
	return err
}
