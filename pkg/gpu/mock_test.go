//go:build cgo

package gpu

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/canarybot/canarybot/pkg/gpu/gputest"
)

// Shorthands for gputest's mock setup.
var (
	setHealthy    = gputest.SetHealthy
	healthyServer = gputest.HealthyServer
	device        = gputest.Device
	setECC        = gputest.SetECC
)

type eccCounts = gputest.ECCCounts

// healthySample is the sample setHealthy makes device i of srv report.
// Its Time is zero, as from a collector WithClock(fixedClock{}).
func healthySample(srv *server.Server, i int) DeviceSample {
	d := device(srv, i)
	return DeviceSample{
		Index:                   i,
		UUID:                    d.UUID,
		Name:                    d.Config.Name,
		Memory:                  &MemoryUsage{UsedBytes: gputest.UsedBytes, TotalBytes: d.MemoryInfo.Total},
		UtilizationPercent:      ptr[uint32](gputest.Utilization),
		TemperatureC:            ptr(uint32(gputest.TempBase + i)),
		PowerWatts:              ptr(float64(gputest.PowerMW) / 1000),
		ClockEventReasons:       ptr[ClockEventReasons](nvml.ClocksEventReasonGpuIdle),
		ClockEventReasonNames:   []string{"GpuIdle"},
		ECCUncorrectedVolatile:  ptr[uint64](0),
		ECCUncorrectedAggregate: ptr[uint64](0),
		ECCCorrectedVolatile:    ptr[uint64](0),
		ECCCorrectedAggregate:   ptr[uint64](0),
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
