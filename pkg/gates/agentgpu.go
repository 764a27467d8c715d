package gates

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gpu/gpuapi"
	"github.com/canarybot/canarybot/pkg/redact"
	"github.com/canarybot/canarybot/pkg/signals"
)

// maxAgentBody bounds one gpu-agent answer: 15 minutes of 10 s snapshots
// of an 8-GPU node are well under 2 MiB.
const maxAgentBody = 32 << 20

// AgentGPU reads GPU signals straight from gpu-agents' JSON API
// (GET /api/v1/gpus?since=…), for setups where no Prometheus scrapes the
// agents. A GPU is a side's while one of the side's pods runs a process on
// it, and for ownerLookback after. Each interval (Start, End] takes, over
// the snapshots in it and the side's GPUs: the highest memory share and
// temperature, every Xid received, the uncorrected volatile ECC errors
// added, and every clock event reason seen active.
type AgentGPU struct {
	// Client is the HTTP client; nil uses one with a 10 s timeout.
	Client *http.Client
	// MaxBody bounds one agent's answer; 0 means maxAgentBody.
	MaxBody int64
}

var _ GPUSource = AgentGPU{}

// FillGPU reads every agent in spec.Agents.
func (a AgentGPU) FillGPU(ctx context.Context, spec *canary.GPUSignals, s *signals.Series, step time.Duration) error {
	if len(s.Intervals) == 0 {
		return nil
	}
	var sides [2][]canary.Matcher
	for side, sel := range [2]map[string]string{spec.Stable, spec.Canary} {
		m, err := canary.CompileMatchers(sel)
		if err != nil {
			return canary.Terminal(fmt.Errorf("signals.gpu %s: %w", signals.Side(side), err))
		}
		sides[side] = m
	}
	since := s.Intervals[0].Start.Add(-ownerLookback)
	for _, base := range spec.Agents {
		h, err := a.history(ctx, base, since)
		if err != nil {
			return err
		}
		fillFromHistory(s, h, sides)
	}
	return nil
}

// history fetches one agent's snapshots since t.
func (a AgentGPU) history(ctx context.Context, base string, since time.Time) (gpuapi.History, error) {
	u := strings.TrimSuffix(base, "/") + gpuapi.APIPath + "?" + url.Values{gpuapi.SinceParam: {since.UTC().Format(time.RFC3339Nano)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	base = redact.URL(base) // from here on, base only names the agent in errors
	if err != nil {
		return gpuapi.History{}, canary.Terminal(fmt.Errorf("gpu-agent %s: %w", base, redact.Error(err)))
	}
	c := a.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return gpuapi.History{}, fmt.Errorf("gpu-agent %s: %w", base, redact.Error(err))
	}
	defer func() { _ = resp.Body.Close() }()
	limit := a.MaxBody
	if limit <= 0 {
		limit = maxAgentBody
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return gpuapi.History{}, fmt.Errorf("gpu-agent %s: read answer: %w", base, err)
	}
	if int64(len(body)) > limit {
		return gpuapi.History{}, fmt.Errorf("gpu-agent %s: answer is over %d bytes", base, limit)
	}
	if resp.StatusCode != http.StatusOK {
		var e gpuapi.APIError
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return gpuapi.History{}, fmt.Errorf("gpu-agent %s: %s: %s", base, resp.Status, e.Error)
		}
		return gpuapi.History{}, fmt.Errorf("gpu-agent %s: %s", base, resp.Status)
	}
	var h gpuapi.History
	if err := json.Unmarshal(body, &h); err != nil {
		return gpuapi.History{}, fmt.Errorf("gpu-agent %s: decode history: %w", base, err)
	}
	return h, nil
}

// deviceTrack is what one GPU has shown so far, across snapshots.
type deviceTrack struct {
	lastSeen [2]time.Time // when a process of each side last ran on it
	ecc      float64      // the last uncorrected volatile ECC count
	eccSeen  bool
}

// fillFromHistory folds one agent's snapshots into s.
func fillFromHistory(s *signals.Series, h gpuapi.History, sides [2][]canary.Matcher) {
	snaps := h.Samples
	sort.SliceStable(snaps, func(i, j int) bool { return snaps[i].Time.Before(snaps[j].Time) })
	tracks := map[string]*deviceTrack{}
	for _, snap := range snaps {
		iv := intervalAt(s, snap.Time)
		for _, d := range snap.Devices {
			tr := tracks[d.UUID]
			if tr == nil {
				tr = &deviceTrack{}
				tracks[d.UUID] = tr
			}
			for side := range sides {
				if runsSide(d.Processes, sides[side]) {
					tr.lastSeen[side] = snap.Time
				}
			}
			eccInc := tr.eccIncrement(d.ECCUncorrectedVolatile)
			if iv == nil {
				continue
			}
			for side := range sides {
				if seen := tr.lastSeen[side]; !seen.IsZero() && snap.Time.Sub(seen) <= ownerLookback {
					addDevice(iv, side, d, eccInc)
				}
			}
		}
	}
}

// eccIncrement is what a device's uncorrected volatile ECC count added
// since its previous snapshot: its first count is the baseline, and a drop
// (the driver reloaded) counts from zero. NaN when the device has none.
func (tr *deviceTrack) eccIncrement(n *uint64) float64 {
	if n == nil {
		return math.NaN()
	}
	v, inc := float64(*n), 0.0
	if tr.eccSeen {
		inc = counterIncrease(tr.ecc, v)
	}
	tr.ecc, tr.eccSeen = v, true
	return inc
}

// runsSide reports whether one of procs belongs to a pod the matchers
// select.
func runsSide(procs []gpuapi.ProcessSample, ms []canary.Matcher) bool {
	for _, p := range procs {
		labels := map[string]string{"pod": p.Pod, "namespace": p.Namespace, "pod_uid": p.PodUID}
		all := true
		for _, m := range ms {
			if !m.Matches(labels[m.Name()]) {
				all = false
				break
			}
		}
		if all && len(ms) > 0 {
			return true
		}
	}
	return false
}

// addDevice folds one owned device's sample into iv's side.
func addDevice(iv *signals.Interval, side int, d gpuapi.DeviceSample, eccInc float64) {
	if m := d.Memory; m != nil && m.TotalBytes > 0 {
		iv.GPUMemoryUsed[side] = nanMax(iv.GPUMemoryUsed[side], m.UsedFraction())
	}
	if t := d.TemperatureC; t != nil {
		iv.GPUTempC[side] = nanMax(iv.GPUTempC[side], float64(*t))
	}
	for _, x := range d.Xid {
		if len(iv.Xid[side]) < maxXidPerInterval {
			iv.Xid[side] = append(iv.Xid[side], int(x.Code))
		}
	}
	if !math.IsNaN(eccInc) {
		if math.IsNaN(iv.ECCUncorrected[side]) {
			iv.ECCUncorrected[side] = 0
		}
		iv.ECCUncorrected[side] += eccInc
	}
	if d.ClockEventReasons != nil {
		if iv.Throttle[side] == nil {
			iv.Throttle[side] = []string{}
		}
		for _, r := range d.ClockEventReasonNames {
			if !slices.Contains(iv.Throttle[side], r) {
				iv.Throttle[side] = append(iv.Throttle[side], r)
			}
		}
	}
}

// intervalAt is the interval (Start, End] holding t, or nil.
func intervalAt(s *signals.Series, t time.Time) *signals.Interval {
	i := sort.Search(len(s.Intervals), func(i int) bool { return !s.Intervals[i].End.Before(t) })
	if i == len(s.Intervals) || !t.After(s.Intervals[i].Start) {
		return nil
	}
	return &s.Intervals[i]
}

func nanMax(a, b float64) float64 {
	if math.IsNaN(a) {
		return b
	}
	return math.Max(a, b)
}
