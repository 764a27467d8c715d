package sim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// Defaults of a Config.
const (
	DefaultWarmup  = 10 * time.Minute
	DefaultPoll    = 10 * time.Second
	DefaultMinPoll = time.Second
)

// planPath is where the simulated repo keeps the plan.
const planPath = ".canarybot/plans/sim.yaml"

// Config is one simulated rollout.
type Config struct {
	// PlanYAML is the CanaryPlan the engine reads from the simulated repo.
	// When nil, Plan is marshalled instead.
	PlanYAML []byte
	Plan     *canary.CanaryPlan
	Scenario *Scenario
	Seed     uint64
	// Gates builds the gate evaluators over the run's simulated signals.
	Gates func(src signals.Source) canary.GateEvaluator
	// Signals, when set, is what Gates receives instead of the simulated
	// world, e.g. a Prometheus holding a recording of the same world (see
	// Record). The world still generates the traffic.
	Signals signals.Source
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// Warmup is stable-only traffic before the rollout starts, so that gates
	// can read stable history: DefaultWarmup when zero, none when negative.
	Warmup time.Duration
	// SyncDelay is how long a commit takes to sync, in simulated time.
	SyncDelay time.Duration
	// Poll and MinPoll bound the engine's waits; DefaultPoll and
	// DefaultMinPoll when zero.
	Poll, MinPoll time.Duration
	// Epoch is where simulated time starts; Epoch() when zero.
	Epoch time.Time
	// TempDir holds each run's repo directory; the system's when empty.
	TempDir string
	// StopAt, when set and earlier, replaces the timeout at maxDuration
	// after the canary's first traffic: a replay stops where its recorded
	// metrics end.
	StopAt time.Time
	// Done, when set, is called by RunMany after each run that succeeded,
	// from the goroutine that ran it, so it must be safe for concurrent use.
	Done func(Result)
}

// Result is the outcome of one simulated rollout.
type Result struct {
	Scenario string `json:"scenario"`
	Seed     uint64 `json:"seed"`
	// Outcome is promote, revert or timeout.
	Outcome string `json:"outcome"`
	// DecidedAfterSeconds is simulated time from the canary's first traffic
	// (or the rollout's start, if it never got any) to the decision.
	DecidedAfterSeconds float64 `json:"decidedAfterSeconds"`
	// CanaryRequests counts the user requests the canary answered before
	// the decision: its exposure.
	CanaryRequests int64 `json:"canaryRequests"`
	// MirroredRequests counts the mirrored copies the canary answered
	// before the decision, which no user saw.
	MirroredRequests int64 `json:"mirroredRequests,omitempty"`
	// DecidingGate is the gate that reverted; empty for promote and timeout.
	DecidingGate string `json:"decidingGate"`
	Expected     string `json:"expected"`
	Correct      bool   `json:"correct"`
	// Reason is the last decision's reason.
	Reason string `json:"reason,omitempty"`
	// CanaryStart is when the canary first received traffic; zero if never.
	CanaryStart time.Time `json:"canaryStart,omitzero"`
}

// Run drives the real engine through one rollout of cfg.Scenario until it
// promotes or reverts, or until the scenario's maxDuration of simulated
// time has passed since the canary's first traffic (a timeout).
func Run(ctx context.Context, cfg Config) (Result, error) {
	res, _, err := runWorld(ctx, cfg)
	return res, err
}

// runWorld is Run, returning the runner too: its world and whether the
// deciding commit scheduled a weight change.
func runWorld(ctx context.Context, cfg Config) (Result, *runner, error) {
	cfg, planYAML, plan, err := cfg.withDefaults()
	if err != nil {
		return Result{}, nil, err
	}
	sc := cfg.Scenario
	world, err := NewWorld(sc, cfg.Seed, cfg.Epoch)
	if err != nil {
		return Result{}, nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	if err := world.Advance(ceilSeconds(cfg.Warmup)); err != nil {
		return Result{}, nil, fmt.Errorf("scenario %s: warm up: %w", sc.Name, err)
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "canarybot-sim-")
	if err != nil {
		return Result{}, nil, fmt.Errorf("create simulated repo: %w", err)
	}
	defer os.RemoveAll(dir)
	r := &runner{cfg: cfg, planYAML: planYAML, plan: plan, world: world, rolloutStart: world.Now()}
	res, err := r.run(ctx, dir)
	return res, r, err
}

// withDefaults fills the defaults and parses the plan.
func (cfg Config) withDefaults() (Config, []byte, *canary.CanaryPlan, error) {
	if cfg.Scenario == nil {
		return cfg, nil, nil, errors.New("simulate: no scenario")
	}
	if cfg.Gates == nil {
		return cfg, nil, nil, errors.New("simulate: no gate evaluators")
	}
	b := cfg.PlanYAML
	if b == nil && cfg.Plan != nil {
		var err error
		if b, err = yaml.Marshal(cfg.Plan); err != nil {
			return cfg, nil, nil, fmt.Errorf("simulate: marshal plan: %w", err)
		}
	}
	if b == nil {
		return cfg, nil, nil, errors.New("simulate: no plan")
	}
	plan, err := canary.ParsePlan(b)
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("simulate: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Warmup == 0:
		cfg.Warmup = DefaultWarmup
	case cfg.Warmup < 0:
		cfg.Warmup = 0
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.MinPoll <= 0 {
		cfg.MinPoll = DefaultMinPoll
	}
	if cfg.Epoch.IsZero() {
		cfg.Epoch = Epoch()
	}
	return cfg, b, plan, nil
}

// runner is one run's wiring and outcome.
type runner struct {
	cfg          Config
	planYAML     []byte
	plan         *canary.CanaryPlan
	world        *World
	rolloutStart time.Time

	gates *recordingGates

	mu       sync.Mutex
	result   *Result
	lastWhy  string
	timedOut bool
	// lastScheduled: the latest commit scheduled a weight change;
	// decisionScheduled: the deciding commit did.
	lastScheduled, decisionScheduled bool
}

// recordingGates remembers the last error of the evaluators it wraps: the
// engine retries a failed tick, so without it a gate that always errs
// would show only as a timeout.
type recordingGates struct {
	inner   canary.GateEvaluator
	lastErr error
}

// Evaluate calls the wrapped evaluator.
func (g *recordingGates) Evaluate(ctx context.Context, gate canary.GateSpec, w canary.Window) (canary.GateResult, error) {
	res, err := g.inner.Evaluate(ctx, gate, w)
	if err != nil {
		g.lastErr = err
	}
	return res, err
}

func (r *runner) run(ctx context.Context, dir string) (Result, error) {
	sc := r.cfg.Scenario
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	repo := &simRepo{dir: dir, world: r.world}
	if _, err := repo.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
		return &canary.Change{Files: map[string][]byte{planPath: r.planYAML}, Subject: "add plan"}, nil
	}); err != nil {
		return Result{}, fmt.Errorf("seed simulated repo: %w", err)
	}
	render := &simRenderer{}
	overlay := canary.ComponentDir(r.plan.Spec.Overlay) + "/"
	repo.onCommit = func(_ string, paths []string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.lastScheduled = slices.ContainsFunc(paths, func(p string) bool { return strings.HasPrefix(p, overlay) })
		if r.lastScheduled {
			r.world.ScheduleSplit(r.world.Now().Add(r.cfg.SyncDelay), splitOf(render.last))
		}
	}
	clock := NewClock(r.world, r.deadline, func() {
		r.mu.Lock()
		r.timedOut = r.world.Err() == nil
		r.mu.Unlock()
		cancel()
	})
	log := r.cfg.Logger.With("scenario", sc.Name, "seed", r.cfg.Seed)
	var src signals.Source = r.world
	if r.cfg.Signals != nil {
		src = r.cfg.Signals
	}
	r.gates = &recordingGates{inner: r.cfg.Gates(src)}
	eng := &canary.Engine{
		PlanPath: planPath, Repo: repo, Renderer: render,
		Sync: &simSync{repo: repo, delay: r.cfg.SyncDelay}, Gates: r.gates,
		Approvals: simApprovals{}, Artifacts: simArtifacts{},
		Stable: func(context.Context, canary.Tree, *canary.CanaryPlan) (canary.Artifact, error) {
			return StableArtifact(), nil
		},
		Clock: clock, Log: log, Poll: r.cfg.Poll, MinPoll: r.cfg.MinPoll,
		OnTick: func(rep canary.Report) { r.onTick(rep, clock, cancel) },
	}
	err := eng.Run(ctx)
	return r.finish(ctx, err)
}

// deadline is maxDuration after the canary's first traffic, or after the
// rollout's start while the canary has had none.
func (r *runner) deadline() (time.Time, bool) {
	base, ok := r.world.CanaryStart()
	if !ok {
		base = r.rolloutStart
	}
	at := base.Add(r.cfg.Scenario.Traffic.MaxDuration.Duration)
	if stop := r.cfg.StopAt; !stop.IsZero() && stop.Before(at) {
		at = stop
	}
	return at, true
}

// onTick records a promote or revert and stops the run.
func (r *runner) onTick(rep canary.Report, clock *Clock, cancel context.CancelFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := rep.Decision
	r.lastWhy = d.Reason
	if r.result != nil || rep.Commit.SHA == "" || rep.Commit.NoOp {
		return
	}
	var outcome string
	switch d.Action {
	case canary.ActPromote:
		outcome = OutcomePromote
	case canary.ActRevert:
		outcome = OutcomeRevert
	default:
		return
	}
	res := r.measure(outcome)
	res.DecidingGate, res.Reason = d.Gate, d.Reason
	r.result = &res
	r.decisionScheduled = r.lastScheduled
	clock.Stop()
	cancel()
}

// measure fills a result at the current simulated time.
func (r *runner) measure(outcome string) Result {
	sc := r.cfg.Scenario
	base, ok := r.world.CanaryStart()
	res := Result{
		Scenario: sc.Name, Seed: r.cfg.Seed, Outcome: outcome, Expected: sc.Expect,
		Correct: outcome == sc.Expect, CanaryRequests: r.world.CanaryRequests(),
		MirroredRequests: r.world.MirroredRequests(),
	}
	if ok {
		res.CanaryStart = base
	} else {
		base = r.rolloutStart
	}
	res.DecidedAfterSeconds = r.world.Now().Sub(base).Seconds()
	return res
}

// finish turns the engine's exit into a result.
func (r *runner) finish(ctx context.Context, runErr error) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := r.cfg.Scenario.Name
	switch {
	case r.result != nil:
		return *r.result, nil
	case r.world.Err() != nil:
		return Result{}, fmt.Errorf("scenario %s seed %d: %w", name, r.cfg.Seed, r.world.Err())
	case r.timedOut:
		res := r.measure(OutcomeTimeout)
		res.Reason = r.lastWhy
		if err := r.gates.lastErr; err != nil {
			res.Reason = strings.TrimPrefix(res.Reason+"; last gate error: "+err.Error(), "; ")
		}
		return res, nil
	case ctx.Err() != nil && runErr != nil:
		return Result{}, fmt.Errorf("scenario %s seed %d: %w", name, r.cfg.Seed, runErr)
	}
	return Result{}, fmt.Errorf("scenario %s seed %d: engine stopped: %w", name, r.cfg.Seed, runErr)
}

// RunMany runs every scenario with every seed, up to parallelism runs at
// once (GOMAXPROCS when not positive). cfg supplies everything but the
// scenario and the seed. Results are ordered by scenario, then seed. The
// first error, in that order, stops the remaining runs.
func RunMany(parent context.Context, cfg Config, scenarios []*Scenario, seeds []uint64, parallelism int) ([]Result, error) {
	if parallelism <= 0 {
		parallelism = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	n := len(scenarios) * len(seeds)
	results, errs := make([]Result, n), make([]error, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(parallelism, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				c := cfg
				c.Scenario, c.Seed = scenarios[i/len(seeds)], seeds[i%len(seeds)]
				results[i], errs[i] = Run(ctx, c)
				switch {
				case errs[i] != nil:
					cancel()
				case c.Done != nil:
					c.Done(results[i])
				}
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	var canceled error
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			canceled = cmp.Or(canceled, err)
		default:
			return nil, err
		}
	}
	if err := parent.Err(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	if canceled != nil {
		return nil, canceled
	}
	return results, nil
}

// splitOf is the traffic split that rendering d sends to the cluster.
func splitOf(d canary.Desired) Split {
	s := Split{Weight: d.CanaryWeight}
	if d.Routes != nil {
		s.Header, s.Mirror = len(d.Routes.Headers) > 0, d.Routes.MirrorPercent
	}
	return s
}
