//go:build cgo

// Package gputest gives go-nvml's mock DGX servers plausible readings for
// the NVML calls the mocks leave unset, so that tests of pkg/gpu and its
// users run the real Collector over them. go-nvml's DGX mocks implement
// identity and memory info only; every other device call panics until its
// …Func field is set.
package gputest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// Readings SetHealthy gives.
const (
	Utilization = 37
	TempBase    = 40 // device i reports TempBase + i °C
	PowerMW     = 312_500
	UsedBytes   = 10 << 30
)

// SetHealthy gives d the readings above, idle clocks, no ECC errors and
// no processes, and sets the mock's own memory info, which its default
// GetMemoryInfoFunc returns. Wrong arguments get ERROR_INVALID_ARGUMENT,
// so a test fails when the collector asks for the wrong sensor or counter.
func SetHealthy(d *server.Device) {
	d.MemoryInfo.Used = UsedBytes
	d.MemoryInfo.Free = d.MemoryInfo.Total - UsedBytes
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{Gpu: Utilization, Memory: 5}, nvml.SUCCESS
	}
	d.GetTemperatureFunc = func(s nvml.TemperatureSensors) (uint32, nvml.Return) {
		if s != nvml.TEMPERATURE_GPU {
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
		return uint32(TempBase + d.Index), nvml.SUCCESS
	}
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return PowerMW, nvml.SUCCESS }
	d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
		return nvml.ClocksEventReasonGpuIdle, nvml.SUCCESS
	}
	SetECC(d, ECCCounts{})
	Runs(d)
}

// HealthyServer is the DGX H100 mock with every device SetHealthy.
func HealthyServer() *server.Server {
	s := dgxh100.New()
	for _, d := range s.Devices {
		SetHealthy(d.(*server.Device))
	}
	return s
}

// Device returns the mock device at index i.
func Device(s *server.Server, i int) *server.Device {
	return s.Devices[i].(*server.Device)
}

// ECCCounts are the ECC error counts a mock device reports.
type ECCCounts struct {
	UncorrectedVolatile, UncorrectedAggregate, CorrectedVolatile, CorrectedAggregate uint64
}

// SetECC makes d report n.
func SetECC(d *server.Device, n ECCCounts) {
	d.GetTotalEccErrorsFunc = func(e nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
		switch {
		case e == nvml.MEMORY_ERROR_TYPE_UNCORRECTED && c == nvml.VOLATILE_ECC:
			return n.UncorrectedVolatile, nvml.SUCCESS
		case e == nvml.MEMORY_ERROR_TYPE_UNCORRECTED && c == nvml.AGGREGATE_ECC:
			return n.UncorrectedAggregate, nvml.SUCCESS
		case e == nvml.MEMORY_ERROR_TYPE_CORRECTED && c == nvml.VOLATILE_ECC:
			return n.CorrectedVolatile, nvml.SUCCESS
		case e == nvml.MEMORY_ERROR_TYPE_CORRECTED && c == nvml.AGGREGATE_ECC:
			return n.CorrectedAggregate, nvml.SUCCESS
		default:
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
	}
}

// Runs makes d report procs as its compute processes.
func Runs(d *server.Device, procs ...nvml.ProcessInfo) {
	d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return procs, nvml.SUCCESS }
}

// XidQueue is an NVML event set over go-nvml's mock: Wait pops queued
// events and otherwise returns ERROR_TIMEOUT at once.
type XidQueue struct {
	*mock.EventSet
	mu       sync.Mutex
	queue    []nvml.EventData
	waitFn   func(ms uint32) (nvml.EventData, nvml.Return)
	blocking bool
	pushed   chan struct{} // signalled on Push, for a blocking Wait
}

// Push queues events for Wait.
func (q *XidQueue) Push(events ...nvml.EventData) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queue = append(q.queue, events...)
	select {
	case q.pushed <- struct{}{}:
	default:
	}
}

// SetBlocking makes Wait on an empty queue block for its timeout, or
// until a Push, as NVML's nvmlEventSetWait does, instead of returning
// ERROR_TIMEOUT at once: for tests that run the agent's watcher for long.
func (q *XidQueue) SetBlocking() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.blocking = true
}

// SetWait makes Wait call fn instead of popping the queue.
func (q *XidQueue) SetWait(fn func(ms uint32) (nvml.EventData, nvml.Return)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.waitFn = fn
}

// Waits returns the timeouts Wait was called with, in milliseconds.
func (q *XidQueue) Waits() []uint32 {
	var ms []uint32
	for _, c := range q.WaitCalls() {
		ms = append(ms, c.V)
	}
	return ms
}

func (q *XidQueue) wait(ms uint32) (nvml.EventData, nvml.Return) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.waitFn != nil {
		return q.waitFn(ms)
	}
	if len(q.queue) == 0 && q.blocking {
		q.mu.Unlock()
		select {
		case <-q.pushed:
		case <-time.After(time.Duration(ms) * time.Millisecond):
		}
		q.mu.Lock()
	}
	if len(q.queue) == 0 {
		return nvml.EventData{}, nvml.ERROR_TIMEOUT
	}
	ev := q.queue[0]
	q.queue = q.queue[1:]
	return ev, nvml.SUCCESS
}

// WithXidQueue makes srv create XidQueue event sets and every device
// register on them, and returns a function that yields the latest set
// (nil before the first).
func WithXidQueue(srv *server.Server) func() *XidQueue {
	var (
		mu   sync.Mutex
		last *XidQueue
	)
	srv.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) {
		q := &XidQueue{pushed: make(chan struct{}, 1)}
		q.EventSet = &mock.EventSet{
			FreeFunc: func() nvml.Return { return nvml.SUCCESS },
			WaitFunc: q.wait,
		}
		mu.Lock()
		defer mu.Unlock()
		last = q
		return q, nvml.SUCCESS
	}
	for _, d := range srv.Devices {
		d.(*server.Device).RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return nvml.SUCCESS }
	}
	return func() *XidQueue {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// Xid is an Xid event with code on device i of srv.
func Xid(srv *server.Server, i int, code uint64) nvml.EventData {
	return nvml.EventData{Device: srv.Devices[i], EventType: nvml.EventTypeXidCriticalError, EventData: code}
}

// PlacePod makes pid a process of pod namespace/name with UID uid, as the
// collector's pod mapping reads it: a systemd-driver cgroup line in
// <procRoot>/<pid>/cgroup and the kubelet's <namespace>_<name>_<uid>
// directory in podsLogDir.
func PlacePod(procRoot, podsLogDir string, pid uint32, namespace, name, uid string) error {
	dir := filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("place pod %s/%s: %w", namespace, name, err)
	}
	cg := "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
		strings.ReplaceAll(uid, "-", "_") + ".slice/cri-containerd-1.scope\n"
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(cg), 0o444); err != nil {
		return fmt.Errorf("place pod %s/%s: %w", namespace, name, err)
	}
	if err := os.MkdirAll(filepath.Join(podsLogDir, namespace+"_"+name+"_"+uid), 0o755); err != nil {
		return fmt.Errorf("place pod %s/%s: %w", namespace, name, err)
	}
	return nil
}
