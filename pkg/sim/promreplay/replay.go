// Package promreplay runs simulated rollouts with their gates reading the
// real Prometheus instead of the simulator's memory.
//
// The engine's decisions move the traffic split, so metrics cannot be
// generated before the run that reads them. Instead each scenario and seed
// is run three times over:
//
//  1. record: run in memory (sim.Record) and keep the world's per-second
//     traffic, up to the decision and a little past it;
//  2. backfill: write every recorded world as OpenMetrics text with
//     explicit timestamps (sim.WriteOpenMetrics), each run's series under
//     its own sim_run label, turn it into TSDB blocks with the real
//     `promtool tsdb create-blocks-from openmetrics`, and start the real
//     Prometheus on them;
//  3. replay: run the same scenario and seed again with the gates reading
//     signals through gates.PromSignals from that Prometheus.
//
// Threshold gates that query PromQL (Options.QueryGates) run in the replay
// against the same Prometheus, each query narrowed to its run's series;
// the recording, with no Prometheus yet, assumes they pass as soon as
// their measurements are due. The series carry the preset's own metric
// names, so a plan's PromQL runs unchanged.
//
// The world draws every second from common random numbers, so the replay
// generates the recorded traffic for as long as it moves the split at the
// same times; after the replay its traffic is checked against the
// recording (sim.World.CheckPrefix).
package promreplay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/promserver"
	"github.com/canarybot/canarybot/pkg/signals"
	"github.com/canarybot/canarybot/pkg/sim"
)

// Defaults and names.
const (
	// DefaultExtra is how long the recording runs on past its decision.
	DefaultExtra = 2 * time.Minute
	// RunLabel tells the runs' series apart in the shared TSDB.
	RunLabel = "sim_run"
	// ErrorsMetric and PredictionsMetric are the simulator's counters for
	// what the vLLM preset has no metric of its own; a plan's
	// signals.metrics may name others.
	ErrorsMetric      = "canarybot_sim:request_errors_total"
	PredictionsMetric = "canarybot_sim:predictions_total"
	// retention keeps backfilled data whatever its age.
	retention = 100 * 365 * 24 * time.Hour
)

// Options configure RunMany.
type Options struct {
	// Config supplies everything but the scenario, the seed and Signals,
	// as for sim.RunMany. Its plan must have spec.signals.
	Config    sim.Config
	Scenarios []*sim.Scenario
	Seeds     []uint64
	// Parallelism bounds the runs at once; twice GOMAXPROCS when not
	// positive, as replays mostly wait on Prometheus.
	Parallelism int
	// Dir keeps the OpenMetrics file (metrics.om), the TSDB (data) and
	// Prometheus's configuration; a temporary directory, removed at the
	// end, when empty.
	Dir string
	// Extra is how long each recording runs past its decision;
	// DefaultExtra when zero.
	Extra time.Duration
	// Prometheus and Promtool are the executables; empty looks them up in
	// PATH.
	Prometheus, Promtool string
	// QueryGates, when set, builds each run's gates instead of
	// Config.Gates, with a Querier for threshold gates' PromQL: in the
	// replay one that queries the run's series in Prometheus; in the
	// recording none, and PromQL gates are assumed to pass as soon as
	// their measurements are due (gates.AssumePassing).
	QueryGates QueryGates
}

// Run is one scenario and seed through both paths.
type Run struct {
	// Memory is the in-memory run the metrics were recorded from.
	Memory sim.Result
	// Replay is the same scenario and seed with the gates reading
	// Prometheus.
	Replay sim.Result
	// Diverged, when not nil, says how the replay's traffic left the
	// recording (it wraps sim.ErrTrafficDiverged): from then on Prometheus
	// did not hold the replay's traffic.
	Diverged error
}

// RunMany records, backfills and replays every scenario with every seed.
// Runs are ordered by scenario, then seed.
func RunMany(ctx context.Context, o Options) (runs []Run, err error) {
	spec, err := planSignals(o.Config)
	if err != nil {
		return nil, err
	}
	if err := feedbackNames(spec); err != nil {
		return nil, err
	}
	if o.Parallelism <= 0 {
		o.Parallelism = 2 * runtime.GOMAXPROCS(0)
	}
	names, metrics := metricNames(spec)
	log := o.Config.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp(o.Config.TempDir, "canarybot-promreplay-"); err != nil {
			return nil, fmt.Errorf("create replay directory: %w", err)
		}
		defer func() { err = errors.Join(err, removeAll(dir)) }()
	}
	recs, err := record(ctx, o)
	if err != nil {
		return nil, err
	}
	exports := make([]sim.ExportRun, len(recs))
	for i, r := range recs {
		exports[i] = sim.ExportRun{World: r.rec.World, Labels: [2]map[string]string{
			withLabel(spec.Stable, RunLabel, r.id), withLabel(spec.Canary, RunLabel, r.id)}}
	}
	api, stop, err := serve(ctx, o, dir, names, exports, log)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	runs = make([]Run, len(recs))
	err = forEach(ctx, len(recs), o.Parallelism, func(ctx context.Context, i int) error {
		cfg := o.Config
		cfg.Scenario, cfg.Seed = recs[i].scenario, recs[i].seed
		cfg.Signals = &gates.PromSignals{API: api, Spec: runSpec(spec, metrics, recs[i].id)}
		if qg := o.QueryGates; qg != nil {
			q := runQuerier{api: api, run: recs[i].id}
			cfg.Gates = func(src signals.Source) canary.GateEvaluator { return qg(src, q) }
		}
		run, err := replay(ctx, cfg, recs[i].rec)
		runs[i] = run
		return err
	})
	if err != nil {
		return nil, err
	}
	return runs, nil
}

// replay runs cfg, whose gates read the recording through Prometheus, up
// to the end of the recording at the latest.
func replay(ctx context.Context, cfg sim.Config, rec *sim.Recording) (Run, error) {
	end := rec.World.Now()
	cfg.StopAt = end
	rep, err := sim.Record(ctx, cfg, 0)
	if err != nil {
		return Run{}, fmt.Errorf("replay: %w", err)
	}
	res := rep.Result
	if res.Outcome == sim.OutcomeTimeout && rep.World.Now().Equal(end) && rec.Result.Outcome != sim.OutcomeTimeout {
		res.Reason = strings.TrimSuffix("stopped where the recorded metrics end, "+
			end.Format(time.TimeOnly)+" in simulated time; "+res.Reason, "; ")
	}
	return Run{Memory: rec.Result, Replay: res, Diverged: rep.World.CheckPrefix(rec.World)}, nil
}

// recorded is one in-memory run and its series' label value.
type recorded struct {
	scenario *sim.Scenario
	seed     uint64
	id       string
	rec      *sim.Recording
}

// record runs every scenario and seed in memory.
func record(ctx context.Context, o Options) ([]recorded, error) {
	extra := o.Extra
	if extra == 0 {
		extra = DefaultExtra
	}
	recs := make([]recorded, 0, len(o.Scenarios)*len(o.Seeds))
	for _, sc := range o.Scenarios {
		for _, seed := range o.Seeds {
			recs = append(recs, recorded{scenario: sc, seed: seed, id: sc.Name + "/" + strconv.FormatUint(seed, 10)})
		}
	}
	err := forEach(ctx, len(recs), o.Parallelism, func(ctx context.Context, i int) error {
		cfg := o.Config
		cfg.Scenario, cfg.Seed, cfg.Signals = recs[i].scenario, recs[i].seed, nil
		if qg := o.QueryGates; qg != nil {
			cfg.Gates = func(src signals.Source) canary.GateEvaluator { return assumePassing{next: qg(src, nil)} }
		}
		rec, err := sim.Record(ctx, cfg, extra)
		if err != nil {
			return fmt.Errorf("record: %w", err)
		}
		recs[i].rec = rec
		return nil
	})
	return recs, err
}

// serve writes the worlds into dir/metrics.om, backfills them into
// dir/data with promtool and starts Prometheus (o's binaries) on the
// blocks. stop stops it.
func serve(ctx context.Context, o Options, dir string, names sim.MetricNames, runs []sim.ExportRun,
	log *slog.Logger) (v1.API, func() error, error) {
	input := filepath.Join(dir, "metrics.om")
	if err := writeFile(input, names, runs); err != nil {
		return nil, nil, err
	}
	data := filepath.Join(dir, "data")
	if err := promserver.Backfill(ctx, promserver.BackfillOptions{Input: input, DataDir: data, Promtool: o.Promtool, Logger: log}); err != nil {
		return nil, nil, err
	}
	srv, err := promserver.Start(ctx, promserver.Options{
		Dir: filepath.Join(dir, "prometheus"), TSDBPath: data, Retention: retention,
		Binary: o.Prometheus, Logger: log,
	})
	if err != nil {
		return nil, nil, err
	}
	c, err := api.NewClient(api.Config{Address: srv.URL()})
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("create prometheus client: %w", err), srv.Stop())
	}
	return v1.NewAPI(c), srv.Stop, nil
}

func writeFile(path string, names sim.MetricNames, runs []sim.ExportRun) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create metrics file: %w", err)
	}
	if err := sim.WriteOpenMetrics(f, names, runs...); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// planSignals is the plan's signals spec.
func planSignals(cfg sim.Config) (*canary.SignalsSpec, error) {
	b := cfg.PlanYAML
	if b == nil && cfg.Plan != nil {
		var err error
		if b, err = yaml.Marshal(cfg.Plan); err != nil {
			return nil, fmt.Errorf("replay: marshal plan: %w", err)
		}
	}
	plan, err := canary.ParsePlan(b)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	spec := plan.Spec.Signals
	if spec == nil || gates.PresetMetrics(spec.Preset) == nil {
		return nil, canary.Terminalf("replay through Prometheus: the plan needs spec.signals with a known preset (%s or %s)",
			canary.PresetVLLM, canary.PresetKServe)
	}
	return spec, nil
}

// metricNames resolves the series the spec's gates read: the preset's
// names, the spec's overrides, and the simulator's counter for
// predictions where the spec does not name one. Errors are written both as
// the simulator's counter (ErrorsMetric) and, where the spec does not name
// another, as the preset's own answers by status class (vLLM's
// http_requests_total{status}, Knative's
// revision_app_request_count{response_code_class}), which the gates read
// and a plan's PromQL may query. metrics is the spec's overrides with the
// simulator's counters added. Of alternatives (a|b) the first is written.
// The simulator's feedback counters are written under the names the spec
// gives its keys feedback and feedbackCorrect, as the guardrails that read
// them in memory name them.
func metricNames(spec *canary.SignalsSpec) (sim.MetricNames, map[string]string) {
	m := gates.PresetMetrics(spec.Preset)
	maps.Copy(m, spec.Metrics)
	metrics := maps.Clone(spec.Metrics)
	if metrics == nil {
		metrics = map[string]string{}
	}
	var status sim.StatusCounter
	if spec.Metrics["errors"] == "" {
		if status = statusCounter(m["errors"]); status.Name == "" {
			metrics["errors"] = ErrorsMetric // a preset with no status counter of its own
		}
		m["errors"] = ErrorsMetric
	}
	if spec.Metrics["predictions"] == "" {
		m["predictions"], metrics["predictions"] = PredictionsMetric, PredictionsMetric
	}
	first := func(k string) string { n, _, _ := strings.Cut(m[k], "|"); return n }
	return sim.MetricNames{
		Requests: first("requests"), Errors: first("errors"), Predictions: first("predictions"),
		Latency: first("latency"), TTFT: first("ttft"), KVCache: first("kvCache"), QueueDepth: first("queueDepth"),
		GPU:      spec.GPU != nil && spec.GPU.Preset == canary.GPUPresetCanarybot && len(spec.GPU.Agents) == 0 && len(spec.GPU.Metrics) == 0,
		Status:   status,
		Feedback: spec.Metrics[sim.CounterFeedback], FeedbackCorrect: spec.Metrics[sim.CounterFeedbackCorrect],
	}, metrics
}

// feedbackNames refuses feedback counters the replay cannot write: it
// writes the simulator's feedback counters (sim.CounterFeedback,
// sim.CounterFeedbackCorrect) under the plain metric names the spec gives
// those keys, not under selectors.
func feedbackNames(spec *canary.SignalsSpec) error {
	var errs []error
	for _, k := range []string{sim.CounterFeedback, sim.CounterFeedbackCorrect} {
		v, ok := spec.Metrics[k]
		if !ok {
			continue
		}
		if _, err := parser.ParseMetricSelector(v); err != nil || strings.ContainsAny(v, "{|") {
			errs = append(errs, fmt.Errorf("signals.metrics.%s: %q: the Prometheus replay writes the simulator's feedback counters under a plain metric name, not a selector", k, v))
		}
	}
	return errors.Join(errs...)
}

// statusCounter reads a preset's error selector, a counter name with one
// label equal to a 5xx class (http_requests_total{status="5xx"}), as the
// status counter to write; the zero value when it is not one.
func statusCounter(selector string) sim.StatusCounter {
	ms, err := parser.ParseMetricSelector(selector)
	if err != nil {
		return sim.StatusCounter{}
	}
	var st sim.StatusCounter
	for _, m := range ms {
		switch {
		case m.Type != labels.MatchEqual:
			return sim.StatusCounter{}
		case m.Name == labels.MetricName:
			st.Name = m.Value
		case st.Label != "":
			return sim.StatusCounter{}
		default:
			st.Label, st.Error = m.Name, m.Value
		}
	}
	if st.Name == "" || st.Label == "" {
		return sim.StatusCounter{}
	}
	st.OK = "2xx"
	return st
}

// runSpec is spec narrowed to one run's series, reading metrics.
func runSpec(spec *canary.SignalsSpec, metrics map[string]string, id string) *canary.SignalsSpec {
	s := *spec
	s.Stable, s.Canary = withLabel(spec.Stable, RunLabel, id), withLabel(spec.Canary, RunLabel, id)
	s.Metrics = metrics
	if g := spec.GPU; g != nil {
		gs := *g
		gs.Stable, gs.Canary = withLabel(g.Stable, RunLabel, id), withLabel(g.Canary, RunLabel, id)
		s.GPU = &gs
	}
	return &s
}

func withLabel(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	out[k] = v
	return out
}

// forEach calls fn for 0…n-1, up to workers at once (GOMAXPROCS when not
// positive), and returns the first error, in index order; an error cancels
// the calls not yet started.
func forEach(parent context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	errs := make([]error, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range jobs {
				if errs[i] = fn(ctx, i); errs[i] != nil {
					cancel()
				}
			}
		})
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, e := range errs {
			if e != nil && !errors.Is(e, context.Canceled) {
				return e
			}
		}
		return err
	}
	return parent.Err()
}

func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
