// Package sim runs the real canary engine (canary.Engine, canary.Decide)
// and real gates against simulated traffic, in simulated time.
//
// A Scenario (the YAML format of bench/scenarios/shared/README.md) says how
// the stable and the canary model behave. A World turns it into per-second
// traffic, seeded and deterministic, and serves it as a signals.Source. A
// Clock advances the World when the engine waits. In-memory edges stand in
// for Git, the renderer, Argo CD, approvals and the registry. Run drives one
// rollout to promote, revert or timeout; RunMany runs many seeds in parallel.
//
// Where the scenario format leaves room, the simulator reads it so:
//   - An absent canary field is stable's field as the scenario's stable
//     block gives it; a change targeting stable does not reach the canary.
//   - A change's set replaces the running values field by field, inside
//     latency, ttft and gpu too; xid and predictions.classes are replaced
//     whole. When its span ends the side returns to its base with the other
//     changes still in force, applied in file order.
//   - Growth (kvCacheGrowthPerMinute, gpu.memoryGrowthPerMinute) counts from
//     the second the side's value or growth last changed: the canary's first
//     traffic, stable's first simulated second, or a change.
//   - Xid codes are raised once, in the second the block listing them takes
//     effect: the side's base when the side starts, a change when it starts.
//   - Latency is drawn for every request, TTFT and a prediction class only
//     for successful ones (as internal/modelsim does).
//   - An interval with any second in a metrics outage, or before the epoch,
//     is NoData.
//
// Beyond the shared format, a behaviour may set feedback (labels that
// arrive late, for the judge's guardrails; see feedback.go). Scenarios
// without it draw exactly as before.
package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Expected outcomes, and the outcome of a run that did not decide in time.
const (
	OutcomePromote = "promote"
	OutcomeRevert  = "revert"
	OutcomeTimeout = "timeout"
)

// Change targets.
const (
	TargetCanary  = "canary"
	TargetStable  = "stable"
	TargetMetrics = "metrics"
)

// Latency distributions.
const (
	DistLognormal = "lognormal"
	DistMixture   = "mixture"
)

// MaxScenarioBytes bounds a scenario file.
const MaxScenarioBytes = 1 << 20

// ErrInvalidScenario marks a scenario that failed decoding or validation.
var ErrInvalidScenario = errors.New("invalid scenario")

// Scenario is one simulated rollout: how both sides behave and what a
// correct bot decides.
type Scenario struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Traffic     Traffic    `json:"traffic"`
	Stable      Behaviour  `json:"stable"`
	Canary      *Behaviour `json:"canary,omitempty"`
	Changes     []Change   `json:"changes,omitempty"`
	// Expect is promote or revert: the only correct final outcome.
	Expect string `json:"expect"`
}

// Traffic is the total load across both sides.
type Traffic struct {
	// RPS is the mean total request rate; arrivals are Poisson.
	RPS float64 `json:"rps"`
	// MaxDuration is how long, in simulated time since the canary first
	// received traffic, the bot has to decide.
	MaxDuration Duration `json:"maxDuration"`
	// HeaderShare is the share of user requests, 0..1, that carry a header
	// route's match (dogfood users, a test client): while a setHeaderRoute
	// step holds, they go to the canary whatever the weight. Absent, it is
	// DefaultHeaderShare. An extension for canarybot's own scenarios.
	HeaderShare *float64 `json:"headerShare,omitempty"`
}

// DefaultHeaderShare is the share of user requests that carry a header
// route's match when a scenario does not say.
const DefaultHeaderShare = 0.05

func (t Traffic) headerShare() float64 {
	if t.HeaderShare == nil {
		return DefaultHeaderShare
	}
	return *t.HeaderShare
}

// Behaviour is how one side behaves. Every field is optional: an absent
// field of the canary is the stable's, and a change's fields replace the
// running values one by one (latency, ttft and gpu field by field too).
type Behaviour struct {
	// ErrorRate is the fraction of requests answered 5xx, 0..1.
	ErrorRate *float64 `json:"errorRate,omitempty"`
	// Latency is the end-to-end latency of every request, failed or not.
	Latency *Distribution `json:"latency,omitempty"`
	// TTFT is the time to first token of successful requests, never more
	// than the request's latency.
	TTFT                   *Distribution `json:"ttft,omitempty"`
	KVCacheUsage           *float64      `json:"kvCacheUsage,omitempty"`
	KVCacheGrowthPerMinute *float64      `json:"kvCacheGrowthPerMinute,omitempty"`
	QueueDepth             *float64      `json:"queueDepth,omitempty"`
	GPU                    *GPU          `json:"gpu,omitempty"`
	Predictions            *Predictions  `json:"predictions,omitempty"`
	// Feedback is labelled feedback arriving late (feedback.go): an
	// extension for canarybot's own scenarios.
	Feedback *Feedback `json:"feedback,omitempty"`
	// Available is for target=metrics changes only: false means the
	// metrics backend answers no data.
	Available *bool `json:"available,omitempty"`
}

// Distribution is a lognormal or a mixture of lognormals, in seconds.
type Distribution struct {
	// Distribution is lognormal or mixture. When absent it is mixture if
	// Components are given, lognormal otherwise.
	Distribution  string      `json:"distribution,omitempty"`
	MedianSeconds *float64    `json:"medianSeconds,omitempty"`
	Sigma         *float64    `json:"sigma,omitempty"`
	Components    []Component `json:"components,omitempty"`
}

// Component is one lognormal of a mixture; weights need not sum to 1.
type Component struct {
	Weight        float64 `json:"weight"`
	MedianSeconds float64 `json:"medianSeconds"`
	Sigma         float64 `json:"sigma"`
}

// GPU holds the GPU gauges and Xid errors of a side.
type GPU struct {
	MemoryUsedFraction    *float64 `json:"memoryUsedFraction,omitempty"`
	MemoryGrowthPerMinute *float64 `json:"memoryGrowthPerMinute,omitempty"`
	// Xid codes are raised once, when the Behaviour that lists them takes
	// effect.
	Xid          []int    `json:"xid,omitempty"`
	TemperatureC *float64 `json:"temperatureC,omitempty"`
}

// Predictions is the class distribution of a side's outputs.
type Predictions struct {
	// Classes are weights by class index; they need not sum to 1.
	Classes []float64 `json:"classes"`
}

// Change is a time-varying behaviour.
type Change struct {
	// At is simulated time since the canary first received traffic.
	At Duration `json:"at"`
	// For bounds the change; nil means until the end.
	For    *Duration  `json:"for,omitempty"`
	Target string     `json:"target"`
	Set    *Behaviour `json:"set"`
}

// active reports whether the change is in force at t since canary start.
func (c Change) active(t time.Duration) bool {
	if t < c.At.Duration {
		return false
	}
	return c.For == nil || t < c.At.Duration+c.For.Duration
}

// Duration is a time.Duration written as a Go duration string ("90s").
// The number 0 is accepted too.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.Duration.String()) }

// UnmarshalJSON reads a Go duration string such as "90s" or "45m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	v, err := parseDuration(b)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// parseDuration reads a JSON duration: a Go duration string, or 0.
func parseDuration(b []byte) (time.Duration, error) {
	var n float64
	if err := json.Unmarshal(b, &n); err == nil {
		if n == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("duration %v has no unit: write it as a string such as \"90s\" or \"5m\"", n)
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, fmt.Errorf("duration must be a string such as \"90s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q: want a Go duration such as \"90s\" or \"5m\"", s)
	}
	return v, nil
}

// ParseScenario decodes a scenario strictly (unknown fields and duplicate
// keys are errors, reported with their path) and validates it. Every problem
// is returned, joined.
func ParseScenario(data []byte) (*Scenario, error) {
	if len(data) > MaxScenarioBytes {
		return nil, fmt.Errorf("%w: %d bytes is over the %d-byte limit", ErrInvalidScenario, len(data), MaxScenarioBytes)
	}
	var sc Scenario
	if err := decodeStrict(data, &sc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidScenario, err)
	}
	sc.normalize()
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidScenario, err)
	}
	return &sc, nil
}

// LoadScenarios reads scenario files; a directory stands for its *.yaml
// and *.yml files, in name order. Names must be unique.
func LoadScenarios(paths ...string) ([]*Scenario, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read scenario: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, err := filepath.Glob(filepath.Join(p, pat))
			if err != nil {
				return nil, fmt.Errorf("list scenarios in %s: %w", p, err)
			}
			found = append(found, m...)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("no *.yaml scenarios in directory %s", p)
		}
		slices.Sort(found)
		files = append(files, found...)
	}
	var out []*Scenario
	seen := map[string]string{}
	for _, f := range files {
		sc, err := LoadScenario(f)
		if err != nil {
			return nil, err
		}
		if prev, ok := seen[sc.Name]; ok {
			return nil, fmt.Errorf("%s: %w: name %q is already used by %s", f, ErrInvalidScenario, sc.Name, prev)
		}
		seen[sc.Name] = f
		out = append(out, sc)
	}
	return out, nil
}

// LoadScenario reads and parses one scenario file.
func LoadScenario(path string) (*Scenario, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	if fi.Size() > MaxScenarioBytes {
		return nil, fmt.Errorf("%s: %w: %d bytes is over the %d-byte limit", path, ErrInvalidScenario, fi.Size(), MaxScenarioBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	sc, err := ParseScenario(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sc, nil
}

// normalize infers each distribution's kind where it is left out.
func (sc *Scenario) normalize() {
	blocks := []*Behaviour{&sc.Stable, sc.Canary}
	for i := range sc.Changes {
		blocks = append(blocks, sc.Changes[i].Set)
	}
	for _, b := range blocks {
		if b == nil {
			continue
		}
		for _, d := range []*Distribution{b.Latency, b.TTFT} {
			if d != nil && d.Distribution == "" {
				d.Distribution = DistLognormal
				if len(d.Components) > 0 {
					d.Distribution = DistMixture
				}
			}
		}
	}
}

// CanaryBase is the canary's behaviour before any change: stable's, with
// the canary's own fields over it.
func (sc *Scenario) CanaryBase() Behaviour {
	if sc.Canary == nil {
		return sc.Stable.clone()
	}
	return merge(sc.Stable, *sc.Canary)
}

// IsAA reports whether sc is an A/A scenario: the canary behaves as
// stable throughout (no field of its own, no change to either side), so
// promotion is the only correct outcome and every revert is a false alarm.
func (sc *Scenario) IsAA() bool {
	if sc.Expect != OutcomePromote || !reflect.DeepEqual(sc.CanaryBase(), sc.Stable) {
		return false
	}
	for _, c := range sc.Changes {
		if c.Target != TargetMetrics {
			return false
		}
	}
	return true
}

// inUnit reports whether f is in [0, 1].
func inUnit(f float64) bool { return f >= 0 && f <= 1 }

// finite reports whether f is neither NaN nor infinite.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// oneOf renders a list of allowed values for messages.
func oneOf(vals ...string) string { return strings.Join(vals, ", ") }
