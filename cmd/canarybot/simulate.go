package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/signals"
	"github.com/canarybot/canarybot/pkg/sim"
	"github.com/canarybot/canarybot/pkg/sim/promreplay"
)

// simGates builds the gate evaluators of a simulated run over its signals:
// every signal-based gate type and threshold gates that measure signals.
// PromQL threshold gates need simQueryGates.
func simGates(src signals.Source, log *slog.Logger) canary.GateEvaluator {
	return simQueryGates(src, nil, log)
}

// simQueryGates is simGates with q (the real Prometheus, in a replay)
// answering threshold gates' PromQL.
func simQueryGates(src signals.Source, q gates.Querier, log *slog.Logger) canary.GateEvaluator {
	sourceFor := func(*canary.SignalsSpec) (signals.Source, error) { return src, nil }
	return gates.ForSignals(sourceFor, gates.NewThreshold(q, log, gates.WithSignals(sourceFor)))
}

// needsPrometheus refuses, in memory, a plan with a PromQL threshold gate:
// only a real Prometheus answers PromQL.
func needsPrometheus(plan *canary.CanaryPlan) error {
	var names []string
	for _, g := range plan.Spec.Gates {
		if promreplay.IsPromQL(g) {
			names = append(names, g.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	what := "gate " + names[0] + " queries"
	if len(names) > 1 {
		what = "gates " + strings.Join(names, ", ") + " query"
	}
	return fmt.Errorf("%s PromQL, which only a real Prometheus answers: run with --metrics prometheus "+
		"(the simulator then writes the preset's series and replays them through promtool and prometheus), "+
		"or measure threshold.signal instead", what)
}

// simulateOptions are the flags of `canarybot simulate`.
type simulateOptions struct {
	plan      string
	scenarios []string
	seeds     int
	seedBase  uint64
	json      bool
	parallel  int
	warmup    time.Duration
	metrics   string
	templates []string
}

// Metrics paths of `canarybot simulate`.
const (
	metricsMemory     = "memory"
	metricsPrometheus = "prometheus"
)

func newSimulate(g *globals) *cobra.Command {
	o := &simulateOptions{}
	cmd := &cobra.Command{
		Use:   "simulate --plan P --scenario S... [--seeds N] [--seed-base B] [--json]",
		Short: "Run the real engine and gates against simulated traffic scenarios, in simulated time",
		Long: `simulate rolls a candidate out under each scenario (a file, or a directory of
*.yaml files) with each seed, driving the real engine and gates against
simulated stable and canary traffic. It prints one line per run (outcome,
simulated time to the decision, canary requests served, deciding gate) and a
summary per scenario. With --json it prints one JSON object per run and
nothing else on stdout. Scenario files may also be given as arguments.

With --metrics prometheus the gates read their signals from the real
Prometheus instead of memory: each run is recorded in memory, written as
OpenMetrics, backfilled with promtool, served by prometheus (both from
Debian's prometheus package) and replayed with the same seed; the replay's
results are printed. A replay that decides differently from its recording is
logged as a warning. The series carry the plan's side labels and the
preset's own metric names (vLLM's vllm:* histograms and gauges and
http_requests_total{status}; KServe's request_predict_seconds and Knative's
revision_app_request_count{response_code_class}), so threshold gates run
their PromQL unchanged, each query narrowed to its run's series. The
recording cannot query PromQL yet: there such a gate passes as soon as its
measurements are due, and a replay whose PromQL gate holds the rollout
longer leaves the recorded traffic (logged as diverged).

In memory (the default) a plan with a PromQL threshold gate is refused:
use --metrics prometheus, or threshold.signal.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.scenarios = append(o.scenarios, args...)
			if err := o.validate(); err != nil {
				return err
			}
			return o.run(cmd.Context(), g)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func (o *simulateOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.plan, "plan", "", "CanaryPlan YAML file to roll out (required)")
	f.StringArrayVar(&o.scenarios, "scenario", nil, "scenario file or directory of *.yaml scenarios (repeatable)")
	f.IntVar(&o.seeds, "seeds", 10, "runs per scenario, one per seed")
	f.Uint64Var(&o.seedBase, "seed-base", 1, "first seed; runs use seed-base … seed-base+seeds-1")
	f.BoolVar(&o.json, "json", false, "print one JSON object per run and nothing else on stdout")
	f.IntVar(&o.parallel, "parallel", 0, "runs at once (0: one per CPU)")
	f.DurationVar(&o.warmup, "warmup", sim.DefaultWarmup, "stable-only traffic before each rollout, in simulated time")
	f.StringArrayVar(&o.templates, "templates", nil, "GateTemplate file or directory for a plan's templateRefs (repeatable; default: the plan's directory)")
	f.StringVar(&o.metrics, "metrics", metricsMemory, "where the gates read signals: memory, or prometheus (record, backfill with promtool, replay)")
}

func (o *simulateOptions) validate() error {
	var errs []error
	if o.plan == "" {
		errs = append(errs, errors.New("--plan is required"))
	}
	if len(o.scenarios) == 0 {
		errs = append(errs, errors.New("at least one --scenario is required"))
	}
	if o.seeds < 1 {
		errs = append(errs, fmt.Errorf("--seeds must be at least 1, got %d", o.seeds))
	}
	if o.parallel < 0 {
		errs = append(errs, fmt.Errorf("--parallel must not be negative, got %d", o.parallel))
	}
	if o.warmup < 0 {
		errs = append(errs, fmt.Errorf("--warmup must not be negative, got %s", o.warmup))
	}
	if o.metrics != metricsMemory && o.metrics != metricsPrometheus {
		errs = append(errs, fmt.Errorf("--metrics must be %s or %s, got %q", metricsMemory, metricsPrometheus, o.metrics))
	}
	return errors.Join(errs...)
}

func (o *simulateOptions) run(ctx context.Context, g *globals) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	plan, planYAML, err := readPlanFile(o.plan, o.templates)
	if err != nil {
		return fmt.Errorf("--plan %s: %w", o.plan, err)
	}
	if o.metrics == metricsMemory {
		if err := needsPrometheus(plan); err != nil {
			return fmt.Errorf("--plan %s: %w", o.plan, err)
		}
	}
	scenarios, err := sim.LoadScenarios(o.scenarios...)
	if err != nil {
		return fmt.Errorf("--scenario: %w", err)
	}
	seeds := make([]uint64, o.seeds)
	for i := range seeds {
		seeds[i] = o.seedBase + uint64(i)
	}
	warmup := o.warmup
	if warmup == 0 {
		warmup = -1 // sim.Config: negative means none
	}
	cfg := sim.Config{
		PlanYAML: planYAML, Logger: log, Warmup: warmup,
		Gates: func(src signals.Source) canary.GateEvaluator { return simGates(src, log) },
	}
	results, err := o.runAll(ctx, cfg, scenarios, seeds, log)
	if err != nil {
		return err
	}
	if o.json {
		if err := printRunsJSON(g.stdout, results); err != nil {
			return err
		}
		printSummaries(g.stderr, results)
		return nil
	}
	for _, r := range results {
		printRun(g.stdout, r)
	}
	printSummaries(g.stdout, results)
	return nil
}

// runAll runs every scenario and seed through the chosen metrics path.
func (o *simulateOptions) runAll(ctx context.Context, cfg sim.Config, scenarios []*sim.Scenario, seeds []uint64,
	log *slog.Logger) ([]sim.Result, error) {
	if o.metrics == metricsMemory {
		return sim.RunMany(ctx, cfg, scenarios, seeds, o.parallel)
	}
	runs, err := promreplay.RunMany(ctx, promreplay.Options{
		Config: cfg, Scenarios: scenarios, Seeds: seeds, Parallelism: o.parallel,
		QueryGates: func(src signals.Source, q gates.Querier) canary.GateEvaluator { return simQueryGates(src, q, log) },
	})
	if err != nil {
		return nil, err
	}
	results := make([]sim.Result, len(runs))
	for i, r := range runs {
		results[i] = r.Replay
		m, p := r.Memory, r.Replay
		if m.Outcome != p.Outcome || m.DecidingGate != p.DecidingGate || r.Diverged != nil {
			log.Warn("replay through prometheus decided differently from memory", "scenario", m.Scenario, "seed", m.Seed,
				"memory", m.Outcome, "memoryGate", m.DecidingGate, "memoryAfterSeconds", m.DecidedAfterSeconds,
				"prometheus", p.Outcome, "prometheusGate", p.DecidingGate, "prometheusAfterSeconds", p.DecidedAfterSeconds,
				"diverged", r.Diverged)
		}
	}
	return results, nil
}

// simRun is the JSON form of one run: exactly these fields.
type simRun struct {
	Scenario            string  `json:"scenario"`
	Seed                uint64  `json:"seed"`
	Outcome             string  `json:"outcome"`
	DecidedAfterSeconds float64 `json:"decidedAfterSeconds"`
	CanaryRequests      int64   `json:"canaryRequests"`
	DecidingGate        string  `json:"decidingGate"`
}

func printRunsJSON(w io.Writer, results []sim.Result) error {
	enc := json.NewEncoder(w)
	for _, r := range results {
		if err := enc.Encode(simRun{
			Scenario: r.Scenario, Seed: r.Seed, Outcome: r.Outcome, DecidedAfterSeconds: r.DecidedAfterSeconds,
			CanaryRequests: r.CanaryRequests, DecidingGate: r.DecidingGate,
		}); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	return nil
}

func printRun(w io.Writer, r sim.Result) {
	gate := r.DecidingGate
	if gate == "" {
		gate = "-"
	}
	mark := "ok"
	if !r.Correct {
		mark = "WRONG (expected " + r.Expected + ")"
	}
	if r.MirroredRequests > 0 {
		mark += fmt.Sprintf("  (and %d mirrored requests no user saw)", r.MirroredRequests)
	}
	after := time.Duration(r.DecidedAfterSeconds * float64(time.Second))
	fmt.Fprintf(w, "%-24s seed %-5d %-8s after %-9s canary requests %7d  gate %-16s %s\n",
		r.Scenario, r.Seed, r.Outcome, after, r.CanaryRequests, gate, mark)
}

func printSummaries(w io.Writer, results []sim.Result) {
	for _, s := range sim.Summarize(results) {
		fmt.Fprintf(w, "summary %-24s expect %-7s correct %d/%d (%.0f%%)  promote %d revert %d timeout %d  "+
			"canary requests before the decision: median %d p80 %d\n",
			s.Scenario, s.Expected, s.Correct, s.Runs, 100*s.CorrectRate(), s.Promoted, s.Reverted, s.TimedOut,
			s.MedianCanaryRequests, s.P80CanaryRequests)
	}
}
