package gates

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// GPUSource fills the GPU fields (GPUMemoryUsed, GPUTempC, Xid,
// ECCUncorrected, Throttle) of both sides of a series whose intervals are
// already laid out.
type GPUSource interface {
	FillGPU(ctx context.Context, spec *canary.GPUSignals, s *signals.Series, step time.Duration) error
}

// ownerLookback is how long a GPU stays a side's after the side's process
// was last seen on it: an Xid 79 takes the process down with the GPU, and
// its errors must still count against the side that ran there.
const ownerLookback = 5 * time.Minute

// GPUPresetMetrics are the metric names a GPU preset reads, by signal. A
// name may carry matchers, and may list alternatives separated by "|"
// (metrics renamed across versions).
func GPUPresetMetrics(preset string) map[string]string {
	switch preset {
	case canary.GPUPresetCanarybot:
		return map[string]string{
			"memoryUsed":     "canarybot_gpu_memory_used_bytes",
			"memoryTotal":    "canarybot_gpu_memory_total_bytes",
			"temperature":    "canarybot_gpu_temperature_celsius",
			"xid":            "canarybot_gpu_xid_errors_total",
			"eccUncorrected": `canarybot_gpu_ecc_errors_total{type="uncorrected",counter="volatile"}`,
			"throttle":       "canarybot_gpu_clock_event_active",
			"process":        "canarybot_gpu_process_memory_used_bytes",
		}
	case canary.GPUPresetDCGM:
		return map[string]string{
			"memoryUsed":     "DCGM_FI_DEV_FB_USED",
			"memoryFree":     "DCGM_FI_DEV_FB_FREE",
			"temperature":    "DCGM_FI_DEV_GPU_TEMP",
			"xid":            "DCGM_FI_DEV_XID_ERRORS",
			"eccUncorrected": "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
			"throttle":       "DCGM_FI_DEV_CLOCKS_EVENT_REASONS|DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
		}
	}
	return nil
}

// PromGPU reads GPU signals from Prometheus: the gpu-agent's
// canarybot_gpu_* series, whose GPUs belong to the side whose pods' processes
// run on them, or dcgm-exporter's DCGM_FI_* series, whose device series
// carry the pod labels themselves.
type PromGPU struct {
	API RangeQuerier
}

var _ GPUSource = PromGPU{}

// gpuQueries are one side's PromQL, per signal.
type gpuQueries struct {
	uuid     string // the device identity label
	owned    string // the side's GPUs at each step, by uuid
	ownedAny string // the side's GPUs at any time up to the range's end
	memory   string
	temp     string
	xid      string // by uuid (and xid for canarybot)
	ecc      string // cumulative, by uuid
	throttle string // by reason (canarybot) or raw bitmasks (dcgm)
	dcgm     bool   // dcgm-exporter: xid is the last Xid code, not a count; throttle is a bitmask
}

func alt(names, sel string) string {
	var parts []string
	for _, n := range strings.Split(names, "|") {
		parts = append(parts, withMatchers(n, "", sel))
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, " or ") + ")"
}

func buildGPUQueries(spec *canary.GPUSignals, sel string, span time.Duration) (gpuQueries, error) {
	names := GPUPresetMetrics(spec.Preset)
	if names == nil {
		return gpuQueries{}, canary.Terminalf("signals.gpu: unknown preset %q", spec.Preset)
	}
	maps.Copy(names, spec.Metrics)
	look, whole := model.Duration(ownerLookback).String(), model.Duration(span+ownerLookback).String()
	q := gpuQueries{uuid: "uuid"}
	owner := names["process"]
	if spec.Preset == canary.GPUPresetDCGM {
		q.uuid, q.dcgm, owner = "UUID", true, names["memoryUsed"]
	}
	q.owned = fmt.Sprintf("group by (%s) (last_over_time(%s[%s]))", q.uuid, alt(owner, sel), look)
	q.ownedAny = fmt.Sprintf("group by (%s) (last_over_time(%s[%s] @ end()))", q.uuid, alt(owner, sel), whole)
	on := fmt.Sprintf(" and on(%s) %s", q.uuid, q.owned)
	onAny := fmt.Sprintf(" and on(%s) %s", q.uuid, q.ownedAny)
	used, temp := alt(names["memoryUsed"], ""), alt(names["temperature"], "")
	if spec.Preset == canary.GPUPresetDCGM {
		free := alt(names["memoryFree"], "")
		q.memory = fmt.Sprintf("max((%s / (%s + %s))%s)", used, used, free, on)
		q.xid = fmt.Sprintf("max by (UUID) (%s)%s", alt(names["xid"], ""), onAny)
		q.ecc = fmt.Sprintf("max by (UUID) (%s)%s", alt(names["eccUncorrected"], ""), onAny)
		q.throttle = fmt.Sprintf("max by (UUID) (%s)%s", alt(names["throttle"], ""), on)
	} else {
		q.memory = fmt.Sprintf("max((%s / %s)%s)", used, alt(names["memoryTotal"], ""), on)
		q.xid = fmt.Sprintf("sum by (uuid, xid) (%s)%s", alt(names["xid"], ""), onAny)
		q.ecc = fmt.Sprintf("sum by (uuid) (%s)%s", alt(names["eccUncorrected"], ""), onAny)
		q.throttle = fmt.Sprintf("max by (reason) (%s%s)", alt(names["throttle"], ""), on)
	}
	q.temp = fmt.Sprintf("max(%s%s)", temp, on)
	return q, nil
}

// FillGPU reads both sides' GPU signals for the intervals of s. Counters
// (Xid, ECC) are read one step before the first interval too, as the
// baseline of its increment.
func (p PromGPU) FillGPU(ctx context.Context, spec *canary.GPUSignals, s *signals.Series, step time.Duration) error {
	if len(s.Intervals) == 0 {
		return nil
	}
	first, end := s.Intervals[0].End, s.Intervals[len(s.Intervals)-1].End
	rng := v1.Range{Start: first.Add(-step), End: end, Step: step}
	for side, sel := range [2]map[string]string{spec.Stable, spec.Canary} {
		q, err := buildGPUQueries(spec, selector(sel), end.Sub(rng.Start))
		if err != nil {
			return err
		}
		r := &gpuSide{api: p.API, rng: rng, s: s, side: side, q: q}
		if err := r.read(ctx); err != nil {
			return fmt.Errorf("signals.gpu %s: %w", signals.Side(side), err)
		}
	}
	return nil
}

// gpuSide reads one side. Index 0 of every per-step slice is the
// baseline step; interval i is step i+1.
type gpuSide struct {
	api  RangeQuerier
	rng  v1.Range
	s    *signals.Series
	side int
	q    gpuQueries
}

func (r *gpuSide) read(ctx context.Context) error {
	for _, g := range []struct {
		q   string
		set func(iv *signals.Interval, v float64)
	}{
		{r.q.memory, func(iv *signals.Interval, v float64) { iv.GPUMemoryUsed[r.side] = v }},
		{r.q.temp, func(iv *signals.Interval, v float64) { iv.GPUTempC[r.side] = v }},
	} {
		m, err := r.query(ctx, g.q)
		if err != nil {
			return err
		}
		for _, ss := range m {
			for _, sp := range ss.Values {
				if iv := r.interval(sp.Timestamp); iv != nil {
					g.set(iv, float64(sp.Value))
				}
			}
		}
	}
	owned, err := r.ownedAt(ctx)
	if err != nil {
		return err
	}
	if err := r.counters(ctx, owned); err != nil {
		return err
	}
	return r.throttle(ctx)
}

func (r *gpuSide) query(ctx context.Context, q string) (model.Matrix, error) {
	return queryMatrix(ctx, r.api, q, r.rng)
}

// step maps a sample time to its step: 0 is the baseline, k the end of
// interval k-1; -1 when it is off the grid.
func (r *gpuSide) step(t model.Time) int {
	d := t.Time().Sub(r.rng.Start)
	if d < 0 || d%r.rng.Step != 0 {
		return -1
	}
	k := int(d / r.rng.Step)
	if k > len(r.s.Intervals) {
		return -1
	}
	return k
}

func (r *gpuSide) interval(t model.Time) *signals.Interval {
	if k := r.step(t); k >= 1 {
		return &r.s.Intervals[k-1]
	}
	return nil
}

// ownedAt is, per step, the set of the side's GPUs.
func (r *gpuSide) ownedAt(ctx context.Context) ([]map[string]bool, error) {
	m, err := r.query(ctx, r.q.owned)
	if err != nil {
		return nil, err
	}
	owned := make([]map[string]bool, len(r.s.Intervals)+1)
	for _, ss := range m {
		id := string(ss.Metric[model.LabelName(r.q.uuid)])
		for _, sp := range ss.Values {
			if k := r.step(sp.Timestamp); k >= 0 {
				if owned[k] == nil {
					owned[k] = map[string]bool{}
				}
				owned[k][id] = true
			}
		}
	}
	return owned, nil
}
