package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canarybot/canarybot/pkg/canary"
)

// stepCollector exports canarybot_rollout_step_seconds: the time since
// each rollout's current step started, read from the clock at scrape
// time, so that a rollout stuck between ticks still ages.
type stepCollector struct {
	clock canary.Clock
	desc  *prometheus.Desc

	mu     sync.Mutex
	starts map[planKey]time.Time
}

func newStepCollector(clock canary.Clock) *stepCollector {
	return &stepCollector{clock: clock, starts: map[planKey]time.Time{},
		desc: prometheus.NewDesc("canarybot_rollout_step_seconds",
			"Time since the current step of a rollout in progress (Progressing or Paused) started: "+
				"its commit landing on the branch, or later when a person merged it later.",
			planLabels(), nil)}
}

// Describe implements prometheus.Collector.
func (c *stepCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *stepCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.clock.Now()
	c.mu.Lock()
	starts := make(map[planKey]time.Time, len(c.starts))
	for k, v := range c.starts {
		starts[k] = v
	}
	c.mu.Unlock()
	for k, start := range starts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, max(now.Sub(start).Seconds(), 0), k.repo, k.plan)
	}
}

func (c *stepCollector) set(k planKey, start time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starts[k] = start
}

func (c *stepCollector) delete(k planKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.starts, k)
}

// Artifacts wraps src so that each look-up counts in
// canarybot_registry_polls_total and each failed one in
// canarybot_registry_poll_errors_total, by the plan's source kind.
func (r *Recorder) Artifacts(src canary.ArtifactSource) canary.ArtifactSource {
	return countingSource{src: src, r: r}
}

// sourceKinds are the values of the source label.
var sourceKinds = []string{"oci", "mlflow", "static"}

type countingSource struct {
	src canary.ArtifactSource
	r   *Recorder
}

// Latest implements canary.ArtifactSource.
func (c countingSource) Latest(ctx context.Context, plan *canary.CanaryPlan) (*canary.Artifact, error) {
	a, err := c.src.Latest(ctx, plan)
	if ctx.Err() != nil {
		return a, err // stopping: not the registry's doing
	}
	kind := sourceKind(plan.Spec.Model.Source)
	c.r.polls.WithLabelValues(kind).Inc()
	if err != nil {
		c.r.pollErrors.WithLabelValues(kind).Inc()
	}
	return a, err
}

func sourceKind(s canary.SourceSpec) string {
	switch {
	case s.OCI != nil:
		return "oci"
	case s.MLflow != nil:
		return "mlflow"
	case s.Static != nil:
		return "static"
	}
	return "unknown"
}
