package gpu

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// Values the healthy metrics below report. go-nvml's DGX mocks implement
// identity and memory info only; every other device call panics until its
// …Func field is set.
const (
	healthyUtilization = 37
	healthyTempBase    = 40 // device i reports healthyTempBase + i
	healthyPowerMW     = 312_500
	healthyUsedBytes   = 10 << 30
)

// setHealthy gives d plausible readings for the calls the mock leaves
// unset, and sets the mock's own memory info, which its default
// GetMemoryInfoFunc returns. Wrong arguments get ERROR_INVALID_ARGUMENT,
// so a test fails when the collector asks for the wrong sensor or counter.
func setHealthy(d *server.Device) {
	d.MemoryInfo.Used = healthyUsedBytes
	d.MemoryInfo.Free = d.MemoryInfo.Total - healthyUsedBytes
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{Gpu: healthyUtilization, Memory: 5}, nvml.SUCCESS
	}
	d.GetTemperatureFunc = func(s nvml.TemperatureSensors) (uint32, nvml.Return) {
		if s != nvml.TEMPERATURE_GPU {
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
		return uint32(healthyTempBase + d.Index), nvml.SUCCESS
	}
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return healthyPowerMW, nvml.SUCCESS }
	d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
		return nvml.ClocksEventReasonGpuIdle, nvml.SUCCESS
	}
	d.GetTotalEccErrorsFunc = func(e nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
		if e != nvml.MEMORY_ERROR_TYPE_UNCORRECTED {
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
		return 0, nvml.SUCCESS
	}
}

// healthyServer is the DGX H100 mock with every device setHealthy.
func healthyServer() *server.Server {
	s := dgxh100.New()
	for _, d := range s.Devices {
		setHealthy(d.(*server.Device))
	}
	return s
}

// device returns the mock device at index i.
func device(s *server.Server, i int) *server.Device {
	return s.Devices[i].(*server.Device)
}

// healthySample is the sample setHealthy makes device i of srv report.
// Its Time is zero, as from a collector WithClock(fixedClock{}).
func healthySample(srv *server.Server, i int) DeviceSample {
	d := device(srv, i)
	return DeviceSample{
		Index:                   i,
		UUID:                    d.UUID,
		Name:                    d.Config.Name,
		Memory:                  &MemoryUsage{UsedBytes: healthyUsedBytes, TotalBytes: d.MemoryInfo.Total},
		UtilizationPercent:      ptr[uint32](healthyUtilization),
		TemperatureC:            ptr(uint32(healthyTempBase + i)),
		PowerWatts:              ptr(float64(healthyPowerMW) / 1000),
		ClockEventReasons:       ptr[ClockEventReasons](nvml.ClocksEventReasonGpuIdle),
		ClockEventReasonNames:   []string{"GpuIdle"},
		ECCUncorrectedVolatile:  ptr[uint64](0),
		ECCUncorrectedAggregate: ptr[uint64](0),
	}
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// dump formats a sample with its pointers followed, for failure messages.
func dump(s DeviceSample) string {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Sprintf("%+v", s)
	}
	return string(b)
}

// openCollector opens a Collector over lib and closes it when t ends.
func openCollector(t *testing.T, lib nvml.Interface, opts ...Option) *Collector {
	t.Helper()
	c := NewCollector(lib, opts...)
	if err := c.Open(context.Background()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}
