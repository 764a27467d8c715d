// Package metrics exports canarybot's own state for Prometheus to scrape:
// where each plan's rollout is, what the engine decided and what its gates
// said, and how long reconciles, pushes and Argo CD syncs take. (Gates read
// a model's metrics through pkg/gates; this package is the other way
// round.)
//
// A Recorder registers on an injected prometheus.Registerer and is fed
// from the engine's reports (canary.Engine.AfterTick), from the fleet's
// plan catalogs (which plans exist) and from the registries it wraps
// (Artifacts); it does no I/O of its own. The series of a plan that
// leaves its repository, or of a repository no longer served, are
// removed. The alert rules in manifests/monitoring read these names.
package metrics

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canarybot/canarybot/pkg/canary"
)

// DefaultAnalysisBudget is the expected time of an analysis step whose
// gates set no bound of their own (judge, drift and gauge gates conclude
// when the evidence does).
const DefaultAnalysisBudget = time.Hour

// Options configure a Recorder.
type Options struct {
	// Clock reads the time for "seconds in step" and "last success".
	Clock canary.Clock
	// AnalysisBudget is the expected time of an unbounded analysis step;
	// DefaultAnalysisBudget when zero.
	AnalysisBudget time.Duration
}

// planLabels are the labels of every per-plan series, then extra ones.
func planLabels(extra ...string) []string { return append([]string{"repo", "plan"}, extra...) }

// Recorder turns the engine's reports into Prometheus metrics.
type Recorder struct {
	clock          canary.Clock
	analysisBudget time.Duration

	phase, stepIndex, weight, expected, lastSuccess, failing *prometheus.GaugeVec
	decisions, transitions, verdicts                         *prometheus.CounterVec
	stepSeconds                                              *stepCollector
	tickDuration                                             *prometheus.HistogramVec
	syncWait, pushDuration                                   prometheus.Histogram
	pushRetries                                              prometheus.Counter
	polls, pollErrors                                        *prometheus.CounterVec
	notifications                                            *Notifications

	mu    sync.Mutex
	plans map[planKey]*planSeries
}

type planKey struct{ repo, plan string }

// planSeries is what the Recorder remembers of one plan between ticks.
type planSeries struct {
	// syncedStep is the start of the last step whose sync wait was
	// observed: each step's wait is observed once.
	syncedStep time.Time
}

// New registers canarybot's rollout and reconcile metrics on reg.
func New(reg prometheus.Registerer, o Options) (*Recorder, error) {
	if o.Clock == nil {
		return nil, errors.New("metrics: Clock is required")
	}
	if o.AnalysisBudget <= 0 {
		o.AnalysisBudget = DefaultAnalysisBudget
	}
	r := &Recorder{clock: o.Clock, analysisBudget: o.AnalysisBudget, plans: map[planKey]*planSeries{}}
	r.newPlanMetrics()
	r.newBotMetrics()
	r.notifications = newNotifications()
	for _, c := range append(r.collectors(), r.notifications.collectors()...) {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register rollout metrics: %w", err)
		}
	}
	return r, nil
}

func (r *Recorder) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.phase, r.stepIndex, r.weight, r.expected, r.lastSuccess, r.failing,
		r.decisions, r.transitions, r.verdicts, r.stepSeconds,
		r.tickDuration, r.syncWait, r.pushDuration, r.pushRetries, r.polls, r.pollErrors}
}

// newPlanMetrics creates the series labelled by repo and plan.
func (r *Recorder) newPlanMetrics() {
	gauge := func(name, help string, extra ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, planLabels(extra...))
	}
	counter := func(name, help string, extra ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, planLabels(extra...))
	}
	r.phase = gauge("canarybot_rollout_phase",
		"The rollout's phase as recorded in Git: 1 for the current phase (Idle, Progressing, Paused, Promoted, Reverted), 0 for the others.", "phase")
	r.stepIndex = gauge("canarybot_rollout_step_index", "Index of the rollout's current step in the plan's steps, from 0.")
	r.weight = gauge("canarybot_rollout_canary_weight_percent", "Share of traffic the canary gets, in percent.")
	r.expected = gauge("canarybot_rollout_step_expected_seconds",
		"How long the current step of a progressing rollout is expected to take at most: the plan's Argo CD sync timeout, "+
			"plus the pause, plus the analysis (a threshold gate's initialDelay + interval × count; 1h by default for other gates). "+
			"Absent for steps that wait for a reviewer.")
	r.lastSuccess = gauge("canarybot_rollout_last_successful_reconcile_timestamp_seconds",
		"When the plan's last successful reconcile finished, in Unix seconds.")
	r.failing = gauge("canarybot_rollout_reconcile_failing", "1 when the plan's last reconcile failed, 0 when it succeeded.")
	r.decisions = counter("canarybot_rollout_decisions_total",
		"Reconciles by the action decided (wait, start, advance, request-approval, hold, promote, revert).", "action")
	r.transitions = counter("canarybot_rollout_transitions_total",
		"Transitions committed to Git (pushed, or merged as a pull request), by action.", "action")
	r.verdicts = counter("canarybot_rollout_gate_verdicts_total",
		"Gate evaluations by gate and verdict (Running, Successful, Failed, Inconclusive, Error).", "gate", "verdict")
	r.stepSeconds = newStepCollector(r.clock)
}

// newBotMetrics creates the series of the whole process.
func (r *Recorder) newBotMetrics() {
	r.tickDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "canarybot_reconcile_duration_seconds",
		Help:    "Time one reconcile (tick) of one plan took, by result (success, error).",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}}, []string{"result"})
	r.syncWait = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "canarybot_sync_wait_seconds",
		Help: "Time from a rollout step's start (its commit landing) to Argo CD finishing the sync that made it " +
			"Ready (operationState.finishedAt), once per step whose sync finished after the step started.",
		Buckets: []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800}})
	r.pushDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "canarybot_push_duration_seconds",
		Help:    "Time to render, commit and push one transition (or open its pull request), retries included.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}})
	r.pushRetries = prometheus.NewCounter(prometheus.CounterOpts{Name: "canarybot_push_retries_total",
		Help: "Pushes of transitions retried because the branch moved meanwhile (not a fast-forward)."})
	r.polls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "canarybot_registry_polls_total",
		Help: "Registry look-ups for a plan's newest artifact, by source kind (oci, mlflow, static)."}, []string{"source"})
	r.pollErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "canarybot_registry_poll_errors_total",
		Help: "Registry look-ups for a plan's newest artifact that failed, by source kind (oci, mlflow, static)."}, []string{"source"})
	for _, kind := range sourceKinds {
		r.polls.WithLabelValues(kind)
		r.pollErrors.WithLabelValues(kind)
	}
}

// Retain removes the series of every plan of repo not named in keep, e.g.
// the plans of a catalog: a plan deleted from Git leaves /metrics.
func (r *Recorder) Retain(repo string, keep []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := map[string]bool{}
	for _, p := range keep {
		kept[p] = true
	}
	for k := range r.plans {
		if k.repo == repo && !kept[k.plan] {
			r.forget(k)
		}
	}
}

// RetainCatalog is Retain with the valid plans of c, for
// fleet.Config.OnCatalog.
func (r *Recorder) RetainCatalog(repo string, c *canary.Catalog) {
	names := make([]string, 0, len(c.Plans))
	for _, e := range c.Plans {
		names = append(names, e.Plan.Metadata.Name)
	}
	r.Retain(repo, names)
}

// Forget removes the series of every plan of repo, for
// fleet.Config.OnRemove.
func (r *Recorder) Forget(repo string) { r.Retain(repo, nil) }

// forget removes one plan's series. The caller holds r.mu.
func (r *Recorder) forget(k planKey) {
	labels := prometheus.Labels{"repo": k.repo, "plan": k.plan}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		r.phase, r.stepIndex, r.weight, r.expected, r.lastSuccess, r.failing, r.decisions, r.transitions, r.verdicts,
	} {
		v.DeletePartialMatch(labels)
	}
	r.stepSeconds.delete(k)
	delete(r.plans, k)
}
