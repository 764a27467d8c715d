package agent

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canarybot/canarybot/pkg/gpu"
)

// collectTimeout bounds the NVML reads of one scrape.
const collectTimeout = 10 * time.Second

// metrics is the agent's prometheus.Collector: every scrape collects (or
// reuses the cached collect) and reports it.
type metrics struct {
	a *Agent

	info, memUsed, memTotal, util, temp, power, clock, ecc, xid, proc, errs, up *prometheus.Desc
}

// Register registers the agent's canarybot_gpu_* metrics with reg. Each
// scrape calls Snapshot, so scrapes within the cache TTL share one read.
func (a *Agent) Register(reg prometheus.Registerer) error {
	if err := reg.Register(newMetrics(a)); err != nil {
		return fmt.Errorf("register GPU metrics: %w", err)
	}
	return nil
}

func newMetrics(a *Agent) *metrics {
	var constLabels prometheus.Labels
	if a.cfg.Node != "" {
		constLabels = prometheus.Labels{"node": a.cfg.Node}
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("canarybot_gpu_"+name, help, labels, constLabels)
	}
	dev := []string{"uuid", "gpu"}
	return &metrics{
		a:        a,
		info:     desc("info", "A GPU on this node; always 1.", "uuid", "gpu", "name"),
		memUsed:  desc("memory_used_bytes", "Framebuffer memory in use, including what the driver reserves.", dev...),
		memTotal: desc("memory_total_bytes", "Framebuffer memory size.", dev...),
		util:     desc("utilization_ratio", "Share of the last sample period in which a kernel ran, 0 to 1.", dev...),
		temp:     desc("temperature_celsius", "GPU die temperature.", dev...),
		power:    desc("power_watts", "Board power draw.", dev...),
		clock: desc("clock_event_active",
			"1 for each reason the clocks are held below their maximum (NVML clock event, formerly throttle, reasons), 0 for the known inactive ones.",
			"uuid", "gpu", "reason"),
		ecc: desc("ecc_errors_total",
			"ECC memory errors by type (uncorrected, corrected) and counter (volatile: since the driver loaded; aggregate: device lifetime).",
			"uuid", "gpu", "type", "counter"),
		xid:  desc("xid_errors_total", "Xid errors this agent received since it started, by Xid code.", "uuid", "gpu", "xid"),
		proc: desc("process_memory_used_bytes", "GPU memory used by a compute process, with its Kubernetes pod where known.", "uuid", "gpu", "pid", "pod_uid", "pod", "namespace"),
		errs: desc("collect_errors_total", "Failed collect operations: open (NVML init), snapshot (device reads, pod lookups), xid (Xid event watch).", "op"),
		up:   desc("up", "1 when NVML answered the last collect, else 0."),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.info, m.memUsed, m.memTotal, m.util, m.temp, m.power, m.clock, m.ecc, m.xid, m.proc, m.errs, m.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. The collector interface has
// no context, so the read is bounded by collectTimeout instead.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	snap, _ := m.a.Snapshot(ctx) // a failure shows as up 0 and in collect_errors_total
	for _, d := range snap.Devices {
		m.device(ch, d)
	}
	up, errs, xids := m.a.counters()
	emit(ch, m.up, prometheus.GaugeValue, boolValue(up))
	for _, op := range slices.Sorted(maps.Keys(errs)) {
		emit(ch, m.errs, prometheus.CounterValue, float64(errs[op]), op)
	}
	for k, n := range xids {
		emit(ch, m.xid, prometheus.CounterValue, float64(n), k.uuid, gpuLabel(k.index), strconv.FormatUint(k.code, 10))
	}
}

// device reports one device's sample; missing (unsupported) readings
// have no series.
func (m *metrics) device(ch chan<- prometheus.Metric, d gpu.DeviceSample) {
	id := []string{d.UUID, gpuLabel(d.Index)}
	gauge := func(desc *prometheus.Desc, v float64, extra ...string) {
		emit(ch, desc, prometheus.GaugeValue, v, append(id[:2:2], extra...)...)
	}
	gauge(m.info, 1, d.Name)
	if d.Memory != nil {
		gauge(m.memUsed, float64(d.Memory.UsedBytes))
		gauge(m.memTotal, float64(d.Memory.TotalBytes))
	}
	if d.UtilizationPercent != nil {
		gauge(m.util, float64(*d.UtilizationPercent)/100)
	}
	if d.TemperatureC != nil {
		gauge(m.temp, float64(*d.TemperatureC))
	}
	if d.PowerWatts != nil {
		gauge(m.power, *d.PowerWatts)
	}
	if d.ClockEventReasons != nil {
		active := d.ClockEventReasons.Names()
		known := gpu.AllReasons.Names()
		for _, name := range known {
			gauge(m.clock, boolValue(slices.Contains(active, name)), name)
		}
		for _, name := range active {
			if !slices.Contains(known, name) { // bits NVML does not name
				gauge(m.clock, 1, name)
			}
		}
	}
	for _, c := range []struct {
		n            *uint64
		typ, counter string
	}{
		{d.ECCUncorrectedVolatile, "uncorrected", "volatile"},
		{d.ECCUncorrectedAggregate, "uncorrected", "aggregate"},
		{d.ECCCorrectedVolatile, "corrected", "volatile"},
		{d.ECCCorrectedAggregate, "corrected", "aggregate"},
	} {
		if c.n != nil {
			emit(ch, m.ecc, prometheus.CounterValue, float64(*c.n), d.UUID, id[1], c.typ, c.counter)
		}
	}
	m.processes(ch, id, d.Processes)
}

// processes reports the GPU memory of each process on one device. NVML
// lists a process once per device; should it list one twice (e.g. in two
// MIG instances), the series sums them, as one series may appear once.
func (m *metrics) processes(ch chan<- prometheus.Metric, id []string, procs []gpu.ProcessSample) {
	used := map[uint32]uint64{}
	var order []gpu.ProcessSample
	for _, p := range procs {
		if p.UsedBytes == nil {
			continue
		}
		if _, seen := used[p.PID]; !seen {
			order = append(order, p)
		}
		used[p.PID] += *p.UsedBytes
	}
	for _, p := range order {
		emit(ch, m.proc, prometheus.GaugeValue, float64(used[p.PID]),
			id[0], id[1], strconv.FormatUint(uint64(p.PID), 10), p.PodUID, p.Pod, p.Namespace)
	}
}

// counters returns copies of the agent's health and counters.
func (a *Agent) counters() (up bool, errs map[string]uint64, xids map[xidKey]uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.up, maps.Clone(a.errs), maps.Clone(a.xids)
}

// emit sends one constant metric, or an invalid one carrying the error
// (e.g. a label value that is not UTF-8), which the scrape reports
// without dropping the other series.
func emit(ch chan<- prometheus.Metric, desc *prometheus.Desc, typ prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(desc, typ, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(desc, err)
	}
	ch <- m
}

// gpuLabel is the gpu label of a device index; "" when unknown (-1).
func gpuLabel(index int) string {
	if index < 0 {
		return ""
	}
	return strconv.Itoa(index)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
