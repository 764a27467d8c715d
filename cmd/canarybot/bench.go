package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/canarybot/canarybot/internal/bench"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
	"github.com/canarybot/canarybot/pkg/sim"
)

type benchOptions struct {
	plans         string
	scenarios     []string
	seeds         int
	parallel      int
	failOnTargets bool
	deliveries    int
	baseline      string
	policies      []string
}

func newBench(g *globals) *cobra.Command {
	o := &benchOptions{}
	c := &cobra.Command{
		Use:   "bench --scenarios DIR [--seeds N]",
		Short: "Measure decision quality: every scenario × N seeds, canarybot's judge against the seed's thresholds",
		Long: `bench simulates every scenario in --scenarios with N seeds under three plans
from --plans: judge.yaml (canarybot's default), judge-strict.yaml (run on the
A/A scenarios for their false-revert rate: the canary behaves as stable
throughout, shared changes included) and seed-thresholds.yaml (the
baseline), on identical traffic traces, and prints the decision table, the
targets (issue 17's compare each scenario's p80 canary requests with those
in --baseline) and the failure classes no scenario covers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			return o.run(cmd.Context(), g, log)
		},
	}
	c.Flags().StringVar(&o.plans, "plans", "bench/plans", "directory with judge.yaml, judge-strict.yaml and seed-thresholds.yaml")
	c.Flags().StringSliceVar(&o.scenarios, "scenarios", nil, "directories or files of scenarios, comma-separated or repeated (required)")
	c.Flags().IntVar(&o.seeds, "seeds", 200, "seeds per scenario")
	c.Flags().IntVar(&o.parallel, "parallel", 0, "runs at once (0: one per CPU)")
	c.Flags().BoolVar(&o.failOnTargets, "fail-on-targets", false, "exit 1 when a target is missed")
	c.Flags().StringVar(&o.baseline, "baseline", "bench/baseline-p80.txt", "each scenario's p80 canary requests before this change, for the issue 17 targets (\"\" skips them)")
	c.Flags().StringSliceVar(&o.policies, "policies", []string{bench.PolicyJudge, bench.PolicyStrict, bench.PolicyBaseline},
		"policies to run, comma-separated (leaving one out leaves its columns and targets empty)")
	c.Flags().IntVar(&o.deliveries, "webhook-deliveries", 2000, "signed webhook deliveries for the acknowledgement benchmark (0 skips it)")
	_ = c.MarkFlagRequired("scenarios")
	return c
}

func (o *benchOptions) run(ctx context.Context, g *globals, log *slog.Logger) error {
	scs, err := sim.LoadScenarios(o.scenarios...)
	if err != nil {
		return err
	}
	if o.seeds < 1 {
		return fmt.Errorf("--seeds must be at least 1, got %d", o.seeds)
	}
	for _, p := range o.policies {
		if p != bench.PolicyJudge && p != bench.PolicyStrict && p != bench.PolicyBaseline {
			return fmt.Errorf("--policies: unknown policy %q (want %s, %s or %s)", p, bench.PolicyJudge, bench.PolicyStrict, bench.PolicyBaseline)
		}
	}
	seeds := make([]uint64, o.seeds)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	var order, aaNames []string
	var aa []*sim.Scenario
	for _, sc := range scs {
		order = append(order, sc.Name)
		if bench.IsAA(sc) {
			aa = append(aa, sc)
			aaNames = append(aaNames, sc.Name)
		}
	}
	res := bench.Results{}
	for _, p := range []struct {
		policy, file string
		scs          []*sim.Scenario
	}{{bench.PolicyJudge, "judge.yaml", scs}, {bench.PolicyStrict, "judge-strict.yaml", aa}, {bench.PolicyBaseline, "seed-thresholds.yaml", scs}} {
		if len(p.scs) == 0 || !slices.Contains(o.policies, p.policy) {
			continue
		}
		if err := o.runPolicy(ctx, g, log, res, p.policy, p.file, p.scs, seeds); err != nil {
			return err
		}
	}
	fmt.Fprintln(g.stdout)
	ok := bench.Render(g.stdout, res, order, o.seeds)
	if o.baseline != "" {
		base, err := bench.LoadBaseline(o.baseline)
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // a missing one fails its target
			return err
		}
		fmt.Fprintln(g.stdout)
		ok = bench.RenderIssueTargets(g.stdout, res, order, aaNames, base) && ok
	}
	fmt.Fprintln(g.stdout)
	bench.RenderBlindSpots(g.stdout, order)
	if o.deliveries > 0 {
		fmt.Fprintf(g.stderr, "bench: webhook acknowledgement, %d deliveries…\n", o.deliveries)
		wr, err := bench.WebhookAck(ctx, o.deliveries, 16)
		if err != nil {
			return fmt.Errorf("webhook benchmark: %w", err)
		}
		ok = bench.RenderWebhook(g.stdout, wr) && ok
	}
	if !ok && o.failOnTargets {
		return &exitError{code: 1}
	}
	return nil
}

func (o *benchOptions) runPolicy(ctx context.Context, g *globals, log *slog.Logger, res bench.Results,
	policy, file string, scs []*sim.Scenario, seeds []uint64) error {
	planYAML, err := os.ReadFile(filepath.Join(o.plans, file))
	if err != nil {
		return fmt.Errorf("read plan: %w", err)
	}
	if _, err := canary.ParsePlan(planYAML); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	start := time.Now()
	fmt.Fprintf(g.stderr, "bench: %s on %d scenarios × %d seeds…\n", policy, len(scs), len(seeds))
	cfg := sim.Config{PlanYAML: planYAML, Logger: slog.New(slog.DiscardHandler),
		Gates: func(src signals.Source) canary.GateEvaluator { return simGates(src, log) },
		Done:  newBenchProgress(g.stderr, policy, len(scs), len(seeds), start).done}
	results, err := sim.RunMany(ctx, cfg, scs, seeds, o.parallel)
	if err != nil {
		return fmt.Errorf("simulate %s: %w", policy, err)
	}
	for _, r := range results {
		res.Add(policy, bench.Run{Scenario: r.Scenario, Seed: r.Seed, Expected: r.Expected, Outcome: r.Outcome,
			DecidedAfter: r.DecidedAfterSeconds, CanaryRequests: r.CanaryRequests, DecidingGate: r.DecidingGate})
	}
	fmt.Fprintf(g.stderr, "bench: %s done in %s\n", policy, time.Since(start).Round(time.Second))
	return nil
}

// benchProgress prints a line as each scenario's last seed finishes: the
// scenarios done so far, its correct rate, and the time since start.
type benchProgress struct {
	mu           sync.Mutex
	w            io.Writer
	policy       string
	total, seeds int
	start        time.Time
	runs         map[string][]sim.Result
	finished     int
}

func newBenchProgress(w io.Writer, policy string, scenarios, seeds int, start time.Time) *benchProgress {
	return &benchProgress{w: w, policy: policy, total: scenarios, seeds: seeds, start: start, runs: map[string][]sim.Result{}}
}

func (p *benchProgress) done(r sim.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runs[r.Scenario] = append(p.runs[r.Scenario], r)
	rs := p.runs[r.Scenario]
	if len(rs) < p.seeds {
		return
	}
	p.finished++
	correct := 0
	for _, x := range rs {
		if x.Correct {
			correct++
		}
	}
	fmt.Fprintf(p.w, "bench: %s %d/%d scenarios, %s %.1f%% correct (%s)\n", p.policy, p.finished, p.total,
		r.Scenario, 100*float64(correct)/float64(len(rs)), time.Since(p.start).Round(time.Second))
	delete(p.runs, r.Scenario)
}
