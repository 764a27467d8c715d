// Package modelsim simulates vLLM-like model servers behind a weighted
// router, on real loopback HTTP, for demos and end-to-end tests.
//
// A Server answers completion requests after a lognormal latency and fails a
// fraction of them, as its Behaviour says, and exposes vLLM's Prometheus
// metrics on /metrics. A Router splits requests between a stable and a
// canary server by weight, like a Gateway API HTTPRoute. A LoadGenerator
// sends a steady request rate to the router.
//
// All randomness comes from an injected *rand.Rand, so runs are
// reproducible for a given seed and request order.
package modelsim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Role is a server's side of the canary split.
type Role string

// Roles.
const (
	RoleStable Role = "stable"
	RoleCanary Role = "canary"
)

// maxLatency caps drawn latencies so that a wide distribution cannot stall
// a demo.
const maxLatency = 10 * time.Minute

// Behaviour is how a simulated model version behaves under traffic.
type Behaviour struct {
	// ErrorRate is the fraction of requests answered 500, 0..1.
	ErrorRate float64
	// LatencyMedian and LatencySigma describe the lognormal end-to-end
	// latency: median·exp(sigma·N(0,1)).
	LatencyMedian time.Duration
	LatencySigma  float64
	// LatencyMixture, when set, replaces LatencyMedian/LatencySigma: each
	// request draws its component by weight.
	LatencyMixture []LatencyComponent
	// TTFTMedian and TTFTSigma describe the lognormal time to first token.
	// TTFT never exceeds the request's latency.
	TTFTMedian time.Duration
	TTFTSigma  float64
	// KVCacheUsage is reported as vllm:gpu_cache_usage_perc, 0..1.
	KVCacheUsage float64
	// QueueDepth is reported as vllm:num_requests_waiting.
	QueueDepth int
	// PredictionClasses, when set, is the distribution of predicted classes
	// (weights, need not sum to 1). Each successful request predicts one,
	// counted in canarybot_sim:predictions_total{class="<index>"}.
	PredictionClasses []float64
	// Answers maps prompts to the completion text the server answers
	// them with (answers.go); other prompts get DefaultAnswer.
	Answers map[string]string
	// WrongAnswers is the share of the known prompts, 0..1, answered
	// WrongAnswer instead, the same prompts every time.
	WrongAnswers float64
}

// LatencyComponent is one lognormal component of a latency mixture.
type LatencyComponent struct {
	Weight float64
	Median time.Duration
	Sigma  float64
}

// Validate reports the first field out of range.
func (b Behaviour) Validate() error {
	switch {
	case !inUnit(b.ErrorRate):
		return fmt.Errorf("errorRate %v is not in [0, 1]", b.ErrorRate)
	case !inUnit(b.KVCacheUsage):
		return fmt.Errorf("kvCacheUsage %v is not in [0, 1]", b.KVCacheUsage)
	case b.LatencyMedian < 0 || b.TTFTMedian < 0:
		return errors.New("medians must not be negative")
	case !nonNegative(b.LatencySigma) || !nonNegative(b.TTFTSigma):
		return errors.New("sigmas must be finite and not negative")
	case b.QueueDepth < 0:
		return fmt.Errorf("queueDepth %d is negative", b.QueueDepth)
	case !inUnit(b.WrongAnswers):
		return fmt.Errorf("wrongAnswers %v is not in [0, 1]", b.WrongAnswers)
	}
	var total float64
	for i, c := range b.LatencyMixture {
		if !nonNegative(c.Weight) || c.Median < 0 || !nonNegative(c.Sigma) {
			return fmt.Errorf("latency mixture component %d is out of range", i)
		}
		total += c.Weight
	}
	if len(b.LatencyMixture) > 0 && total <= 0 {
		return errors.New("latency mixture weights sum to zero")
	}
	total = 0
	for i, w := range b.PredictionClasses {
		if !nonNegative(w) {
			return fmt.Errorf("prediction class %d has weight %v", i, w)
		}
		total += w
	}
	if len(b.PredictionClasses) > 0 && total <= 0 {
		return errors.New("prediction class weights sum to zero")
	}
	return nil
}

// Outcome is one simulated request.
type Outcome struct {
	// Failed requests are answered 500.
	Failed  bool
	Latency time.Duration
	// TTFT is zero for a failed request.
	TTFT time.Duration
	// Class is the predicted class index, or -1 when none.
	Class int
}

// draw simulates one request under b with rnd.
func (b Behaviour) draw(rnd *rand.Rand) Outcome {
	o := Outcome{Class: -1}
	o.Failed = rnd.Float64() < b.ErrorRate
	o.Latency = b.drawLatency(rnd)
	if !o.Failed {
		o.TTFT = min(lognormal(rnd, b.TTFTMedian, b.TTFTSigma), o.Latency)
		o.Class = pick(rnd, b.PredictionClasses)
	}
	return o
}

// drawLatency draws the end-to-end latency.
func (b Behaviour) drawLatency(rnd *rand.Rand) time.Duration {
	if len(b.LatencyMixture) == 0 {
		return lognormal(rnd, b.LatencyMedian, b.LatencySigma)
	}
	weights := make([]float64, len(b.LatencyMixture))
	for i, c := range b.LatencyMixture {
		weights[i] = c.Weight
	}
	c := b.LatencyMixture[pick(rnd, weights)]
	return lognormal(rnd, c.Median, c.Sigma)
}

// lognormal draws median·exp(sigma·N(0,1)), capped at maxLatency. It always
// consumes one normal draw, so that the sequence of draws does not depend
// on the parameters.
func lognormal(rnd *rand.Rand, median time.Duration, sigma float64) time.Duration {
	f := math.Exp(sigma * rnd.NormFloat64())
	d := float64(median) * f
	if d >= float64(maxLatency) || math.IsNaN(d) {
		return maxLatency
	}
	return time.Duration(d)
}

// pick draws an index with probability proportional to weights, or -1 when
// there are none.
func pick(rnd *rand.Rand, weights []float64) int {
	if len(weights) == 0 {
		return -1
	}
	var total float64
	for _, w := range weights {
		total += w
	}
	x := rnd.Float64() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

func inUnit(f float64) bool { return f >= 0 && f <= 1 }

func nonNegative(f float64) bool { return f >= 0 && !math.IsInf(f, 0) }
