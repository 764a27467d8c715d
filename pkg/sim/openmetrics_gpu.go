package sim

import (
	"math"
	"slices"
	"strconv"

	"github.com/canarybot/canarybot/pkg/signals"
)

// The GPU families WriteOpenMetrics writes with MetricNames.GPU, named and
// labelled as canarybot gpu-agent exports them: each side runs one pod,
// PodName(side), on a GPU of its own.
const (
	gpuMemoryUsed  = "canarybot_gpu_memory_used_bytes"
	gpuMemoryTotal = "canarybot_gpu_memory_total_bytes"
	gpuTemperature = "canarybot_gpu_temperature_celsius"
	gpuXid         = "canarybot_gpu_xid_errors_total"
	gpuProcess     = "canarybot_gpu_process_memory_used_bytes"
	// simGPUBytes is the simulated GPUs' memory: 80 GiB.
	simGPUBytes = 80 << 30
	// SimNamespace is the namespace of the simulated pods.
	SimNamespace = "sim"
)

// PodName is the name of the pod that serves side in the simulated world,
// as the gpu-agent's series name it: model-stable-0 or model-canary-0.
func PodName(side signals.Side) string {
	if side == signals.Canary {
		return "model-canary-0"
	}
	return "model-stable-0"
}

// gpuLabels are run r's side labels with the side's GPU: a UUID unique to
// the run and side, and index 0.
func gpuLabels(r omRun, run, side int) string {
	l := r.labels[side]
	if l != "" {
		l += ","
	}
	return l + `uuid="GPU-sim-` + strconv.Itoa(run) + "-" + strconv.Itoa(side) + `",gpu="0"`
}

// gpu writes the gpu-agent's families: memory, temperature and each pod's
// process at the end of every second the side serves, and Xid counters
// from each code's first event on.
func (o *omWriter) gpu() {
	o.gpuGauge(gpuMemoryUsed, func(g *gaugeSeries, k int) float64 { return math.Round(g.mem[k] * simGPUBytes) }, "")
	o.gpuGauge(gpuMemoryTotal, func(*gaugeSeries, int) float64 { return simGPUBytes }, "")
	o.gpuGauge(gpuTemperature, func(g *gaugeSeries, k int) float64 { return g.temp[k] }, "")
	o.gpuGauge(gpuProcess, func(g *gaugeSeries, k int) float64 { return math.Round(g.mem[k] * simGPUBytes * 0.9) }, "process")
	o.typeLine(gpuXid, "counter")
	for i, r := range o.runs {
		w := r.w
		for side := range w.gauges {
			var codes []int
			for _, e := range w.xids {
				if int(e.side) == side && !slices.Contains(codes, e.code) {
					codes = append(codes, e.code)
				}
			}
			for _, code := range codes {
				o.xidSeries(r, w, i, side, code)
			}
		}
	}
}

// xidSeries writes one side's counter of one Xid code: the events before
// second boundary j, from the boundary after its first event.
func (o *omWriter) xidSeries(r omRun, w *World, run, side, code int) {
	first, n, events := -1, 0.0, 0
	labels := gpuLabels(r, run, side)
	for j := 1; j <= w.now; j++ {
		for ; events < len(w.xids) && w.xids[events].sec < j; events++ {
			if e := w.xids[events]; int(e.side) == side && e.code == code {
				n++
				if first < 0 {
					first = j
				}
			}
		}
		if first >= 0 && scraped(w, j) {
			o.sample(gpuXid, labels, "xid", strconv.Itoa(code), n, w, j)
		}
	}
}

// gpuGauge writes one GPU gauge of every run's sides at the end of each
// second the side had GPU readings; the process family adds the side's
// pod.
func (o *omWriter) gpuGauge(name string, val func(g *gaugeSeries, k int) float64, kind string) {
	o.typeLine(name, "gauge")
	for i, r := range o.runs {
		for side, g := range r.w.gauges {
			labels := gpuLabels(r, i, side)
			if kind == "process" {
				labels += `,pid="` + strconv.Itoa(1000+side) + `",pod="` + PodName(signals.Side(side)) +
					`",namespace="` + SimNamespace + `"`
			}
			for k := range g.mem {
				if v := val(g, k); !math.IsNaN(g.mem[k]) && !math.IsNaN(v) && scraped(r.w, k+1) {
					o.sample(name, labels, "", "", v, r.w, k+1)
				}
			}
		}
	}
}
