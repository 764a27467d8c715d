//go:build cgo

// Package gpusim runs a GPU node for tests: canarybot's real gpu-agent
// (pkg/gpu/agent) over go-nvml's mock DGX H100 (through pkg/gpu/gputest),
// with Kubernetes pods placed on its GPUs the way the agent finds them on
// a node (/proc/<pid>/cgroup and the kubelet's pod log directories), and
// controls to break a GPU: memory, temperature, uncorrected ECC errors,
// clock event reasons and Xid errors. It serves the agent's /metrics and
// JSON API over HTTP.
package gpusim

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/canarybot/canarybot/pkg/gpu"
	"github.com/canarybot/canarybot/pkg/gpu/agent"
	"github.com/canarybot/canarybot/pkg/gpu/gputest"
)

// Pod is a pod whose process runs on a GPU of the node.
type Pod struct {
	GPU             int
	Namespace, Name string
	UID             string
	PID             uint32
}

// device is one GPU's moving readings.
type device struct {
	used, ecc, reasons atomic.Uint64
	temp               atomic.Uint32
}

// Node is a running GPU node. Its readings start healthy (gputest's).
type Node struct {
	srv   *server.Server
	xid   *gputest.XidQueue
	devs  []*device
	total uint64
	url   string
}

// Start runs a node with pods on its GPUs until the test ends.
func Start(t testing.TB, pods ...Pod) *Node {
	t.Helper()
	n := &Node{srv: gputest.HealthyServer()}
	set := gputest.WithXidQueue(n.srv)
	proc, logs := t.TempDir(), t.TempDir()
	for _, p := range pods {
		if err := gputest.PlacePod(proc, logs, p.PID, p.Namespace, p.Name, p.UID); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n.srv.Devices {
		n.devs = append(n.devs, n.control(i, pods))
	}
	col := gpu.NewCollector(n.srv, gpu.WithProcRoot(proc), gpu.WithPodsLogDir(logs))
	a, err := agent.New(col, agent.Config{Node: "gpu-node-1", Interval: 250 * time.Millisecond, History: 15 * time.Minute, CacheTTL: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := a.Register(reg); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(a.Handler(reg))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait(); hs.Close(); _ = col.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for set() == nil {
		if time.Now().After(deadline) {
			t.Fatal("gpusim: the agent never registered for Xid events")
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.xid = set()
	n.xid.SetBlocking()
	n.url = hs.URL
	return n
}

// control makes device i read its moving values, and run the processes
// of the pods placed on it.
func (n *Node) control(i int, pods []Pod) *device {
	d, mock := &device{}, gputest.Device(n.srv, i)
	n.total = mock.MemoryInfo.Total
	d.used.Store(gputest.UsedBytes)
	d.reasons.Store(nvml.ClocksEventReasonGpuIdle)
	d.temp.Store(uint32(gputest.TempBase + i))
	mock.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
		u := d.used.Load()
		return nvml.Memory{Total: n.total, Used: u, Free: n.total - u}, nvml.SUCCESS
	}
	mock.GetTotalEccErrorsFunc = func(e nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
		if e == nvml.MEMORY_ERROR_TYPE_UNCORRECTED && c == nvml.VOLATILE_ECC {
			return d.ecc.Load(), nvml.SUCCESS
		}
		return 0, nvml.SUCCESS
	}
	mock.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return d.reasons.Load(), nvml.SUCCESS }
	mock.GetTemperatureFunc = func(s nvml.TemperatureSensors) (uint32, nvml.Return) {
		if s != nvml.TEMPERATURE_GPU {
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
		return d.temp.Load(), nvml.SUCCESS
	}
	var procs []nvml.ProcessInfo
	for _, p := range pods {
		if p.GPU == i {
			procs = append(procs, nvml.ProcessInfo{Pid: p.PID, UsedGpuMemory: 8 << 30})
		}
	}
	gputest.Runs(mock, procs...)
	return d
}

// URL is the agent's base URL, e.g. http://127.0.0.1:40123.
func (n *Node) URL() string { return n.url }

// Addr is the agent's host:port, for a Prometheus target.
func (n *Node) Addr() string { return strings.TrimPrefix(n.url, "http://") }

// MemoryTotal is every GPU's memory size in bytes.
func (n *Node) MemoryTotal() uint64 { return n.total }

// UUID is GPU i's UUID.
func (n *Node) UUID(i int) string { return gputest.Device(n.srv, i).UUID }

// SetMemoryUsed sets GPU i's used memory.
func (n *Node) SetMemoryUsed(i int, bytes uint64) { n.devs[i].used.Store(bytes) }

// SetTemperature sets GPU i's temperature in °C.
func (n *Node) SetTemperature(i int, c uint32) { n.devs[i].temp.Store(c) }

// SetECC sets GPU i's count of uncorrected volatile ECC errors.
func (n *Node) SetECC(i int, count uint64) { n.devs[i].ecc.Store(count) }

// SetClockEventReasons sets GPU i's clock event reasons, an NVML bitmask.
func (n *Node) SetClockEventReasons(i int, mask uint64) { n.devs[i].reasons.Store(mask) }

// RaiseXid makes GPU i raise the Xid codes, as NVML's event set reports
// them.
func (n *Node) RaiseXid(i int, codes ...uint64) {
	for _, c := range codes {
		n.xid.Push(gputest.Xid(n.srv, i, c))
	}
}
