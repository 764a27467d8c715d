package gates

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// DefaultQueryTimeout bounds one measurement's query.
const DefaultQueryTimeout = 30 * time.Second

// Querier runs one instant PromQL query evaluated at ts. client_golang's
// v1.API satisfies it, and NewPrometheus builds one.
type Querier interface {
	Query(ctx context.Context, query string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error)
}

// Threshold is the canary.GateEvaluator for threshold gates: a PromQL
// query measured every interval and judged by conditions and limits.
//
// It is stateless. For a window {Start, Now}, measurement k (k = 1, 2, …)
// is due at
//
//	t_k = Start + initialDelay + k*interval
//
// and is an instant query evaluated at t_k, not at the wall-clock time of
// the call. Evaluate takes every due measurement (t_k ≤ Now) in order and
// stops at the first terminal verdict, so calling it again, after a
// restart for instance, repeats the same measurements. Errored
// measurements do not count towards count (as in Argo Rollouts), so an
// error makes the gate take one more measurement. Unset fields default to
// interval DefaultInterval (1m), initialDelay 0, count DefaultCount (5),
// failureLimit 0, inconclusiveLimit 0 and consecutiveErrorLimit
// DefaultConsecutiveErrorLimit (4).
//
// Each call repeats every query of the window, so a gate costs up to
// count queries per call; keep count modest.
type Threshold struct {
	querier      Querier
	sourceFor    func(*canary.SignalsSpec) (signals.Source, error)
	logger       *slog.Logger
	queryTimeout time.Duration
	settle       time.Duration
}

var _ canary.GateEvaluator = (*Threshold)(nil)

// ThresholdOption configures a Threshold.
type ThresholdOption func(*Threshold)

// WithQueryTimeout bounds each query; zero leaves only the caller's
// context. The default is DefaultQueryTimeout.
func WithQueryTimeout(d time.Duration) ThresholdOption {
	return func(t *Threshold) { t.queryTimeout = d }
}

// WithSettle delays each measurement until Now ≥ t_k + d, so that the
// samples Prometheus ingests a little after their timestamp are in place
// before t_k is queried and a later re-evaluation sees the same data. The
// default is zero: a measurement is taken as soon as t_k ≤ Now.
func WithSettle(d time.Duration) ThresholdOption {
	return func(t *Threshold) { t.settle = d }
}

// NewThreshold returns a Threshold evaluator querying q. A nil logger
// discards logs.
func NewThreshold(q Querier, logger *slog.Logger, opts ...ThresholdOption) *Threshold {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := &Threshold{querier: q, logger: logger, queryTimeout: DefaultQueryTimeout}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Evaluate assesses gate over w. Query failures are Error measurements,
// judged by the consecutive error limit. It returns an error only when the
// gate cannot be assessed at all: a missing or invalid threshold
// configuration or window (terminal), or a canceled ctx.
func (t *Threshold) Evaluate(ctx context.Context, gate canary.GateSpec, w canary.Window) (canary.GateResult, error) {
	p, err := planThreshold(gate.Threshold)
	if err != nil {
		return canary.GateResult{}, canary.Terminal(fmt.Errorf("gate %s: %w", gate.Name, err))
	}
	if w.Start.IsZero() {
		return canary.GateResult{}, canary.Terminalf("gate %s: analysis window has no start", gate.Name)
	}
	start := w.Start.Round(0) // drop the monotonic reading: instants are wall-clock
	measure, err := t.measurer(ctx, gate, p, start, w.Now)
	if err != nil {
		return canary.GateResult{}, err
	}
	var ms []canary.Measurement
	verdict := canary.VerdictRunning
	var next time.Time
	for k := 1; verdict == canary.VerdictRunning; k++ {
		at := p.at(start, k)
		if due := at.Add(t.settle); due.After(w.Now) {
			next = due
			break
		}
		m, err := measure(ctx, at)
		if err != nil {
			return canary.GateResult{}, err
		}
		ms = append(ms, m)
		verdict = Assess(ms, p.limits)
	}
	res := result(gate.Name, p, verdict, ms, next)
	t.logger.Debug("gate evaluated", "gate", gate.Name, "verdict", res.Verdict,
		"measurements", len(ms), "reason", res.Reason)
	return res, nil
}

// measure takes one measurement at at. A failed query is an Error
// measurement unless ctx itself is done.
func (t *Threshold) measure(ctx context.Context, gate string, p *thresholdPlan, at time.Time) (canary.Measurement, error) {
	qctx := ctx
	var opts []v1.Option
	if t.queryTimeout > 0 {
		var cancel context.CancelFunc
		qctx, cancel = context.WithTimeout(ctx, t.queryTimeout)
		defer cancel()
		opts = append(opts, v1.WithTimeout(t.queryTimeout))
	}
	v, warnings, _, err := t.querier.Query(qctx, p.query, at, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return canary.Measurement{}, fmt.Errorf("query gate %s at %s: %w", gate, at.Format(time.RFC3339), err)
		}
		return canary.Measurement{At: at, Verdict: canary.VerdictError, Message: "query: " + err.Error()}, nil
	}
	m := p.conds.Measure(at, v)
	if len(warnings) > 0 {
		m.Message += " (prometheus warnings: " + strings.Join(warnings, "; ") + ")"
		t.logger.Debug("query warnings", "gate", gate, "at", at, "warnings", []string(warnings))
	}
	return m, nil
}

// thresholdPlan is a threshold gate with defaults applied and conditions
// compiled.
type thresholdPlan struct {
	query    string
	signal   *canary.SignalStat
	conds    *Conditions
	delay    time.Duration
	interval time.Duration
	limits   Limits
}

// at is measurement k's instant.
func (p *thresholdPlan) at(start time.Time, k int) time.Time {
	return start.Add(p.delay + time.Duration(k)*p.interval)
}

func planThreshold(g *canary.ThresholdGate) (*thresholdPlan, error) {
	if g == nil {
		return nil, errors.New("threshold configuration is missing")
	}
	var errs []error
	if strings.TrimSpace(g.Query) == "" && g.Signal == nil {
		errs = append(errs, errors.New("threshold query is empty"))
	}
	conds, err := CompileConditions(g.SuccessCondition, g.FailureCondition)
	if err != nil {
		errs = append(errs, err)
	}
	p := &thresholdPlan{
		query:    g.Query,
		signal:   g.Signal,
		conds:    conds,
		delay:    g.InitialDelay.Or(0),
		interval: g.Interval.Or(DefaultInterval),
		limits:   LimitsFor(g),
	}
	if p.interval <= 0 {
		errs = append(errs, fmt.Errorf("interval must be positive, got %s", p.interval))
	}
	if p.delay < 0 {
		errs = append(errs, fmt.Errorf("initialDelay must not be negative, got %s", p.delay))
	}
	if p.limits.Count < 1 {
		errs = append(errs, fmt.Errorf("count must be at least 1, got %d", p.limits.Count))
	}
	for _, l := range []struct {
		name string
		v    int
	}{
		{"failureLimit", p.limits.FailureLimit},
		{"inconclusiveLimit", p.limits.InconclusiveLimit},
		{"consecutiveErrorLimit", p.limits.ConsecutiveErrorLimit},
	} {
		if l.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %d", l.name, l.v))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// AssumePassing is what gate, a threshold gate, would return over w if
// every measurement passed: Running until count measurements are due, then
// Successful. It queries nothing. The
// simulator records a PromQL gate's traffic with it before a real
// Prometheus can answer the query (see pkg/sim/promreplay).
func AssumePassing(gate canary.GateSpec, w canary.Window) (canary.GateResult, error) {
	p, err := planThreshold(gate.Threshold)
	if err != nil {
		return canary.GateResult{}, canary.Terminal(fmt.Errorf("gate %s: %w", gate.Name, err))
	}
	if w.Start.IsZero() {
		return canary.GateResult{}, canary.Terminalf("gate %s: analysis window has no start", gate.Name)
	}
	start := w.Start.Round(0)
	var ms []canary.Measurement
	verdict := canary.VerdictRunning
	var next time.Time
	for k := 1; verdict == canary.VerdictRunning; k++ {
		at := p.at(start, k)
		if at.After(w.Now) {
			next = at
			break
		}
		ms = append(ms, canary.Measurement{At: at, Verdict: canary.VerdictSuccessful, Message: "assumed to pass"})
		verdict = Assess(ms, p.limits)
	}
	return result(gate.Name, p, verdict, ms, next), nil
}
