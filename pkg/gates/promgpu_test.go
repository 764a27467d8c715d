//go:build cgo

package gates_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/canarybot/canarybot/internal/gpusim"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/gpu/gputest"
	"github.com/canarybot/canarybot/pkg/promserver"
	"github.com/canarybot/canarybot/pkg/signals"
)

// gpuPods are the stable pod on GPU 0 and the canary pod on GPU 1.
func gpuPods() []gpusim.Pod {
	return []gpusim.Pod{
		{GPU: 0, Namespace: "llm", Name: "model-stable-0", UID: "0f5b8a8e-1111-4c1e-9d55-000000000001", PID: 100},
		{GPU: 1, Namespace: "llm", Name: "model-canary-0", UID: "0f5b8a8e-2222-4c1e-9d55-000000000002", PID: 200},
	}
}

// breakCanary makes the canary's GPU nearly full, 91 °C and
// hot-throttled, with two uncorrected ECC errors and an Xid 79; GPU 2,
// which runs no pod, raises an Xid 48 that neither side owns.
func breakCanary(n *gpusim.Node) {
	n.SetMemoryUsed(1, n.MemoryTotal()/100*97)
	n.SetTemperature(1, 91)
	n.SetECC(1, 2)
	n.SetClockEventReasons(1, nvml.ClocksThrottleReasonHwSlowdown|nvml.ClocksEventReasonSwThermalSlowdown)
	n.RaiseXid(1, 79)
	n.RaiseXid(2, 48)
}

// dcgmExporter serves DCGM_FI_* series as dcgm-exporter does with its
// Kubernetes pod mapping on: device series labelled with the pod whose
// container holds the GPU. dcgm-exporter needs a real GPU and DCGM, so
// this stands in for its /metrics page only.
type dcgmExporter struct {
	mu     sync.Mutex
	broken bool
}

func (d *dcgmExporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	d.mu.Lock()
	broken := d.broken
	d.mu.Unlock()
	type dev struct {
		gpu, uuid, pod                   string
		used, free, temp, xid, ecc, mask int
	}
	devs := []dev{
		{"0", "GPU-5c1f0d00-0000-0000-0000-000000000000", "model-stable-0", 10240, 71319, 40, 0, 0, 1},
		{"1", "GPU-5c1f0d00-0000-0000-0000-000000000001", "model-canary-0", 10240, 71319, 41, 0, 0, 1},
		{"2", "GPU-5c1f0d00-0000-0000-0000-000000000002", "", 512, 81047, 42, 0, 0, 1},
	}
	if broken {
		devs[1].used, devs[1].free, devs[1].temp, devs[1].xid, devs[1].ecc, devs[1].mask = 79000, 2559, 91, 79, 2, 0x8|0x20
		devs[2].xid = 48
	}
	var b strings.Builder
	for _, m := range []struct {
		name, typ string
		val       func(dev) int
	}{
		{"DCGM_FI_DEV_FB_USED", "gauge", func(d dev) int { return d.used }},
		{"DCGM_FI_DEV_FB_FREE", "gauge", func(d dev) int { return d.free }},
		{"DCGM_FI_DEV_GPU_TEMP", "gauge", func(d dev) int { return d.temp }},
		{"DCGM_FI_DEV_XID_ERRORS", "gauge", func(d dev) int { return d.xid }},
		{"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", func(d dev) int { return d.ecc }},
		{"DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "gauge", func(d dev) int { return d.mask }},
	} {
		fmt.Fprintf(&b, "# HELP %s dcgm field.\n# TYPE %s %s\n", m.name, m.name, m.typ)
		for _, d := range devs {
			pod := ""
			if d.pod != "" {
				pod = fmt.Sprintf(`,container="vllm",namespace="llm",pod=%q`, d.pod)
			}
			fmt.Fprintf(&b, "%s{gpu=%q,UUID=%q,device=\"nvidia%s\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"gpu-node-1\"%s} %d\n",
				m.name, d.gpu, d.uuid, d.gpu, pod, m.val(d))
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}

// gpuSummary is what one side of a series shows before and after the
// break.
type gpuSummary struct {
	memBefore, memAfter float64
	maxTemp             float64
	xid                 []int
	ecc                 float64
	reasons             []string
}

func summarize(s *signals.Series, side int, brk time.Time) gpuSummary {
	out := gpuSummary{memBefore: math.NaN(), memAfter: math.NaN(), maxTemp: math.NaN(), ecc: math.NaN()}
	for _, iv := range s.Intervals {
		if m := iv.GPUMemoryUsed[side]; !math.IsNaN(m) {
			if iv.End.Before(brk) {
				out.memBefore = m
			} else {
				out.memAfter = m
			}
		}
		if v := iv.GPUTempC[side]; !math.IsNaN(v) && (math.IsNaN(out.maxTemp) || v > out.maxTemp) {
			out.maxTemp = v
		}
		out.xid = append(out.xid, iv.Xid[side]...)
		if e := iv.ECCUncorrected[side]; !math.IsNaN(e) {
			if math.IsNaN(out.ecc) {
				out.ecc = 0
			}
			out.ecc += e
		}
		for _, r := range iv.Throttle[side] {
			if !slices.Contains(out.reasons, r) {
				out.reasons = append(out.reasons, r)
			}
		}
	}
	slices.Sort(out.reasons)
	return out
}

// A real gpu-agent over go-nvml's mock, and a dcgm-exporter page, are
// scraped by the real Prometheus; the GPU signals read back through each
// path (canarybot preset, dcgm preset, the agent's JSON API) must put the
// canary GPU's faults on the canary side only, and the GPU gauge gates
// must fail on them.
func TestGPUSignalsFromAgentsAndDCGM(t *testing.T) {
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	node := gpusim.Start(t, gpuPods()...)
	dcgm := &dcgmExporter{}
	ds := httptest.NewServer(dcgm)
	t.Cleanup(ds.Close)
	prom, err := promserver.Start(ctx, promserver.Options{ScrapeInterval: 500 * time.Millisecond, Logger: log,
		Targets: []promserver.Target{{Addr: node.Addr()}, {Addr: strings.TrimPrefix(ds.URL, "http://")}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prom.Stop() })
	for _, q := range []string{`canarybot_gpu_process_memory_used_bytes{pod="model-canary-0"}`, `DCGM_FI_DEV_FB_USED{pod="model-canary-0"}`} {
		if _, err := prom.WaitForSamples(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	time.Sleep(3 * time.Second)
	brk := time.Now()
	breakCanary(node)
	dcgm.mu.Lock()
	dcgm.broken = true
	dcgm.mu.Unlock()
	time.Sleep(4 * time.Second)
	end := time.Now()

	api, err := gates.NewPrometheusAPI(prom.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pods := func(preset string, agents ...string) *canary.SignalsSpec {
		return &canary.SignalsSpec{Preset: canary.PresetVLLM,
			Stable: map[string]string{"role": "stable"}, Canary: map[string]string{"role": "canary"},
			GPU: &canary.GPUSignals{Preset: preset, Agents: agents,
				Stable: map[string]string{"pod": "~model-stable-.*"}, Canary: map[string]string{"pod": "~model-canary-.*", "namespace": "llm"}}}
	}
	wantReasons := []string{"HwSlowdown", "SwThermalSlowdown"}
	for _, tc := range []struct {
		name      string
		spec      *canary.SignalsSpec
		stableMem float64
	}{
		{"canarybot preset through Prometheus", pods(canary.GPUPresetCanarybot), float64(gputest.UsedBytes) / float64(node.MemoryTotal())},
		{"gpu-agent JSON API", pods(canary.GPUPresetCanarybot, node.URL()), float64(gputest.UsedBytes) / float64(node.MemoryTotal())},
		{"dcgm preset through Prometheus", pods(canary.GPUPresetDCGM), 10240.0 / (10240 + 71319)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &gates.PromSignals{API: api, Spec: tc.spec}
			s, err := src.Read(ctx, start, end, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			st, ca := summarize(s, int(signals.Stable), brk), summarize(s, int(signals.Canary), brk)
			near := func(what string, got, want float64) {
				t.Helper()
				if math.IsNaN(got) || math.Abs(got-want) > 0.005 {
					t.Errorf("%s = %v, want %v", what, got, want)
				}
			}
			near("stable memory before", st.memBefore, tc.stableMem)
			near("stable memory after", st.memAfter, tc.stableMem)
			near("canary memory before", ca.memBefore, tc.stableMem)
			if ca.memAfter < 0.96 {
				t.Errorf("canary memory after the break = %v, want ≥ 0.96", ca.memAfter)
			}
			near("stable temperature", st.maxTemp, gputest.TempBase)
			near("canary temperature", ca.maxTemp, 91)
			if !slices.Equal(ca.xid, []int{79}) || len(st.xid) != 0 {
				t.Errorf("Xid: canary %v stable %v, want canary [79] once, stable none (GPU 2's 48 is nobody's)", ca.xid, st.xid)
			}
			if ca.ecc != 2 || st.ecc != 0 {
				t.Errorf("uncorrected ECC: canary %v stable %v, want 2 and 0", ca.ecc, st.ecc)
			}
			for _, r := range wantReasons {
				if !slices.Contains(ca.reasons, r) {
					t.Errorf("canary clock event reasons %v lack %s", ca.reasons, r)
				}
			}
			if !slices.Equal(st.reasons, []string{"GpuIdle"}) {
				t.Errorf("stable clock event reasons = %v, want [GpuIdle]", st.reasons)
			}
			before := &signals.Series{}
			for _, iv := range s.Intervals {
				if iv.End.Before(brk) {
					before.Intervals = append(before.Intervals, iv)
				}
			}
			checkGPUGates(t, before, start, brk, canary.VerdictSuccessful)
			checkGPUGates(t, s, start, end, canary.VerdictFailed)
		})
	}
}

// checkGPUGates runs the GPU gauge gates over s and wants each to give
// want.
func checkGPUGates(t *testing.T, s *signals.Series, start, end time.Time, want canary.Verdict) {
	t.Helper()
	for i := range s.Intervals {
		s.Intervals[i].NoData = false // no request metrics here; the GPU gates read GPU fields only
	}
	plan := gpuGatePlan(t)
	sg := &gates.SignalGates{SourceFor: func(*canary.SignalsSpec) (signals.Source, error) { return staticSource{s}, nil }}
	for _, g := range plan.Spec.Gates {
		r, err := sg.Evaluate(context.Background(), g, canary.Window{Start: start, Now: end})
		if err != nil {
			t.Fatalf("gate %s: %v", g.Name, err)
		}
		if r.Verdict != want {
			t.Errorf("gate %s until %s = %s (%s), want %s", g.Name, end.Format(time.TimeOnly), r.Verdict, r.Reason, want)
		}
	}
}

type staticSource struct{ s *signals.Series }

func (s staticSource) Read(context.Context, time.Time, time.Time, time.Duration) (*signals.Series, error) {
	return s.s, nil
}

// gpuGatePlan is a plan with one gate per GPU signal, decoded, defaulted
// and validated as users write it.
func gpuGatePlan(t *testing.T) *canary.CanaryPlan {
	t.Helper()
	const y = `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: gpu}
spec:
  model: {name: m, source: {oci: {repository: r.example/m}}}
  traffic: {mode: kserve, kserve: {inferenceService: m}}
  overlay: overlays/m
  argocd: {application: m}
  signals:
    preset: vllm
    stable: {role: stable}
    canary: {role: canary}
    step: 1s
    gpu:
      stable: {pod: "~model-stable-.*"}
      canary: {pod: "~model-canary-.*"}
  steps: [{setWeight: 10}, {analysis: {gates: [memory, xid, ecc, throttle, temperature]}}]
  gates:
  - {name: memory, gauge: {signal: gpuMemory, max: 0.95}}
  - {name: xid, gauge: {signal: xid, codes: [79]}}
  - {name: ecc, gauge: {signal: eccUncorrected}}
  - {name: throttle, gauge: {signal: throttle, max: 0.1, window: 10s}}
  - {name: temperature, gauge: {signal: gpuTemperature}}
`
	p, err := canary.ParsePlan([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
