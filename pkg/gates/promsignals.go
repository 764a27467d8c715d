package gates

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// RangeQuerier runs a PromQL range query; client_golang's v1.API has it.
type RangeQuerier interface {
	QueryRange(ctx context.Context, query string, r v1.Range, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error)
}

// PresetMetrics are the metric names a preset reads, by signal.
func PresetMetrics(preset string) map[string]string {
	switch preset {
	case canary.PresetVLLM:
		return map[string]string{
			"requests": "vllm:e2e_request_latency_seconds_count",
			// vLLM's OpenAI server counts its answers by status class
			// (prometheus-fastapi-instrumentator's default grouping).
			"errors":     `http_requests_total{status="5xx"}`,
			"latency":    "vllm:e2e_request_latency_seconds",
			"ttft":       "vllm:time_to_first_token_seconds",
			"tpot":       "vllm:time_per_output_token_seconds",
			"kvCache":    "vllm:gpu_cache_usage_perc|vllm:kv_cache_usage_perc",
			"queueDepth": "vllm:num_requests_waiting",
		}
	case canary.PresetKServe:
		return map[string]string{
			"requests": "request_predict_seconds_count",
			"latency":  "request_predict_seconds",
			// Knative's queue-proxy in front of a serverless predictor
			// counts its answers by status class; a RawDeployment has
			// none, so name an error counter in spec.signals.metrics.
			"errors": `revision_app_request_count{response_code_class="5xx"}`,
		}
	}
	return nil
}

// PromSignals reads signals.Series from Prometheus for one signals spec:
// counters as increase() over each step, histograms by bucket, gauges as
// the side's maximum. Errors are the 5xx answers vLLM's OpenAI server, or
// Knative's queue-proxy in front of a KServe predictor, counts.
// Predictions (a counter labelled by class index) are the model's
// business: they are read only when the spec names their metric.
//
// With spec.gpu, the GPU signals of each side come from Prometheus too
// (PromGPU), or, when spec.gpu.agents lists gpu-agents, from their JSON API
// (AgentGPU).
type PromSignals struct {
	API  RangeQuerier
	Spec *canary.SignalsSpec
	// AgentClient reads gpu-agents; nil uses a client with a 10 s timeout.
	AgentClient *http.Client
}

var _ signals.Source = (*PromSignals)(nil)

// Read slices (start, end] into steps.
func (p *PromSignals) Read(ctx context.Context, start, end time.Time, step time.Duration) (*signals.Series, error) {
	names := PresetMetrics(p.Spec.Preset)
	if names == nil {
		return nil, canary.Terminalf("signals: unknown preset %q", p.Spec.Preset)
	}
	for k, v := range p.Spec.Metrics {
		names[k] = v
	}
	first := start.Truncate(step).Add(step)
	if first.After(end) {
		return &signals.Series{}, nil
	}
	rng := v1.Range{Start: first, End: end, Step: step}
	var times []time.Time
	for t := first; !t.After(end); t = t.Add(step) {
		times = append(times, t)
	}
	s := &signals.Series{Intervals: make([]signals.Interval, len(times))}
	for i, t := range times {
		s.Intervals[i] = signals.Interval{Start: t.Add(-step), End: t, KVCache: signals.NaN2(), QueueDepth: signals.NaN2(),
			GPUMemoryUsed: signals.NaN2(), GPUTempC: signals.NaN2(), ECCUncorrected: signals.NaN2()}
	}
	seen := make([]bool, len(times))
	for side, sel := range [2]map[string]string{p.Spec.Stable, p.Spec.Canary} {
		r := &sideReader{api: p.API, rng: rng, times: times, sel: selector(sel), step: step, series: s, side: side, seen: seen}
		if err := r.read(ctx, names); err != nil {
			return nil, err
		}
	}
	for i := range s.Intervals {
		s.Intervals[i].NoData = !seen[i]
	}
	if g := p.Spec.GPU; g != nil {
		var src GPUSource = PromGPU{API: p.API}
		if len(g.Agents) > 0 {
			src = AgentGPU{Client: p.AgentClient}
		}
		if err := src.FillGPU(ctx, g, s, step); err != nil {
			return nil, fmt.Errorf("read GPU signals: %w", err)
		}
	}
	return s, nil
}

// sideReader fills one side of a series.
type sideReader struct {
	api    RangeQuerier
	rng    v1.Range
	times  []time.Time
	sel    string
	step   time.Duration
	series *signals.Series
	side   int
	seen   []bool
}

func (r *sideReader) read(ctx context.Context, names map[string]string) error {
	win := model.Duration(r.step).String()
	counter := func(name string) string {
		return fmt.Sprintf("sum(increase(%s[%s]))", withMatchers(name, "", r.sel), win)
	}
	if err := r.scalar(ctx, counter(names["requests"]), func(iv *signals.Interval, v float64) { iv.Requests[r.side] = v }, true); err != nil {
		return err
	}
	if n := names["errors"]; n != "" {
		if err := r.scalar(ctx, counter(n), func(iv *signals.Interval, v float64) { iv.Errors[r.side] = v }, false); err != nil {
			return err
		}
	}
	for _, g := range []struct {
		name string
		agg  string
		set  func(iv *signals.Interval, v float64)
	}{
		{names["kvCache"], "max", func(iv *signals.Interval, v float64) { iv.KVCache[r.side] = v }},
		{names["queueDepth"], "sum", func(iv *signals.Interval, v float64) { iv.QueueDepth[r.side] = v }},
	} {
		if g.name == "" {
			continue
		}
		if err := r.scalar(ctx, fmt.Sprintf("%s(%s)", g.agg, alt(g.name, r.sel)), g.set, false); err != nil {
			return err
		}
	}
	if err := r.counters(ctx, names); err != nil {
		return err
	}
	if err := r.classes(ctx, names["predictions"]); err != nil {
		return err
	}
	if err := r.histogram(ctx, names["latency"], func(iv *signals.Interval) *[2][]float64 { return &iv.Latency }, &r.series.LatencyBounds); err != nil {
		return err
	}
	if err := r.histogram(ctx, names["ttft"], func(iv *signals.Interval) *[2][]float64 { return &iv.TTFT }, &r.series.TTFTBounds); err != nil {
		return err
	}
	return r.histogram(ctx, names["tpot"], func(iv *signals.Interval) *[2][]float64 { return &iv.TPOT }, &r.series.TPOTBounds)
}

func (r *sideReader) query(ctx context.Context, q string) (model.Matrix, error) {
	return queryMatrix(ctx, r.api, q, r.rng)
}

// queryMatrix runs a range query and wants a matrix back.
func queryMatrix(ctx context.Context, api RangeQuerier, q string, rng v1.Range) (model.Matrix, error) {
	v, _, _, err := api.QueryRange(ctx, q, rng)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("query %s: want a matrix, got %s", q, v.Type())
	}
	return m, nil
}

// index maps a sample time to its interval.
func (r *sideReader) index(t model.Time) (int, bool) {
	i := sort.Search(len(r.times), func(i int) bool { return !r.times[i].Before(t.Time()) })
	return i, i < len(r.times) && r.times[i].Equal(t.Time())
}

func (r *sideReader) scalar(ctx context.Context, q string, set func(*signals.Interval, float64), marksData bool) error {
	m, err := r.query(ctx, q)
	if err != nil {
		return err
	}
	for _, ss := range m {
		for _, sp := range ss.Values {
			if i, ok := r.index(sp.Timestamp); ok {
				set(&r.series.Intervals[i], float64(sp.Value))
				if marksData {
					r.seen[i] = true
				}
			}
		}
	}
	return nil
}

// classes reads a prediction counter by its class label ("0", "1", …)
// into per-class increments.
func (r *sideReader) classes(ctx context.Context, name string) error {
	if name == "" {
		return nil
	}
	m, err := r.query(ctx, fmt.Sprintf("sum by (class) (increase(%s[%s]))", withMatchers(name, "", r.sel), model.Duration(r.step)))
	if err != nil {
		return err
	}
	for _, ss := range m {
		k, err := strconv.Atoi(string(ss.Metric["class"]))
		if err != nil || k < 0 || k > 1000 {
			return fmt.Errorf("predictions %s: class label %q is not a small class index", name, ss.Metric["class"])
		}
		for _, sp := range ss.Values {
			i, ok := r.index(sp.Timestamp)
			if !ok {
				continue
			}
			p := &r.series.Intervals[i].Predictions[r.side]
			if len(*p) <= k {
				*p = append(*p, make([]float64, k+1-len(*p))...)
			}
			(*p)[k] = float64(sp.Value)
		}
	}
	return nil
}

// histogram reads cumulative buckets by le and stores them per bucket.
func (r *sideReader) histogram(ctx context.Context, name string, field func(*signals.Interval) *[2][]float64, bounds *[]float64) error {
	if name == "" {
		return nil
	}
	m, err := r.query(ctx, fmt.Sprintf("sum by (le) (increase(%s[%s]))", withMatchers(name, "_bucket", r.sel), model.Duration(r.step)))
	if err != nil {
		return err
	}
	type bucket struct {
		le   float64
		vals map[int]float64
	}
	var bs []bucket
	for _, ss := range m {
		le, err := strconv.ParseFloat(string(ss.Metric["le"]), 64)
		if err != nil {
			return fmt.Errorf("histogram %s: bad le %q: %w", name, ss.Metric["le"], err)
		}
		b := bucket{le: le, vals: map[int]float64{}}
		for _, sp := range ss.Values {
			if i, ok := r.index(sp.Timestamp); ok {
				b.vals[i] = float64(sp.Value)
			}
		}
		bs = append(bs, b)
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	if len(bs) == 0 {
		return nil
	}
	if len(*bounds) == 0 {
		for _, b := range bs {
			if !math.IsInf(b.le, 1) {
				*bounds = append(*bounds, b.le)
			}
		}
	}
	for i := range r.series.Intervals {
		counts := make([]float64, len(bs))
		prev := 0.0
		for k, b := range bs {
			counts[k] = math.Max(0, b.vals[i]-prev)
			prev = math.Max(prev, b.vals[i])
		}
		field(&r.series.Intervals[i])[r.side] = counts
	}
	return nil
}

// withMatchers renders a series selector: a preset's metric name, which may
// carry matchers of its own (http_requests_total{status="5xx"}), with
// suffix added to the name (_bucket) and sel's matchers ({k="v",…}) joined
// to its own.
func withMatchers(name, suffix, sel string) string {
	base, own, _ := strings.Cut(name, "{")
	own = strings.TrimSuffix(own, "}")
	side := strings.TrimSuffix(strings.TrimPrefix(sel, "{"), "}")
	switch {
	case own == "" && side == "":
		return base + suffix
	case own == "":
		return base + suffix + "{" + side + "}"
	case side == "":
		return base + suffix + "{" + own + "}"
	}
	return base + suffix + "{" + own + "," + side + "}"
}

// selector renders label matchers, sorted, as {k="v",…}; a "~re" value
// becomes k=~"re".
func selector(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = canary.PromMatcher(k, m[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}
