//go:build cgo

package gpu

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/canarybot/canarybot/pkg/gpu/gputest"
)

// fixedClock always tells the same time.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func TestSnapshotHealthy(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	srv := healthyServer()
	snap, err := openCollector(t, srv, WithClock(fixedClock{at})).Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if !snap.Time.Equal(at) || snap.Node != "" {
		t.Errorf("snapshot time %v node %q, want %v and no node", snap.Time, snap.Node, at)
	}
	samples := snap.Devices
	if len(samples) != 8 {
		t.Fatalf("got %d samples, want 8", len(samples))
	}
	for i, s := range samples {
		want := healthySample(srv, i)
		want.Time = at
		if !reflect.DeepEqual(s, want) {
			t.Errorf("device %d:\n got %s\nwant %s", i, dump(s), dump(want))
		}
	}
	// The same, spelled out: values the mock and setHealthy give.
	s := samples[2]
	if s.Name != "NVIDIA H100 80GB HBM3" || s.Memory.TotalBytes != 80<<30 || *s.PowerWatts != 312.5 ||
		*s.TemperatureC != 42 || *s.UtilizationPercent != 37 {
		t.Errorf("device 2 = %s", dump(s))
	}
	if n := len(device(srv, 0).GetCurrentClocksThrottleReasonsCalls()); n != 0 {
		t.Errorf("deprecated throttle reasons called %d times on a driver with event reasons", n)
	}
}

func TestSnapshotDGXA100(t *testing.T) {
	srv := dgxa100.New()
	for _, d := range srv.Devices {
		setHealthy(d.(*server.Device))
	}
	snap, err := openCollector(t, srv).Snapshot(context.Background())
	samples := snap.Devices
	if err != nil || len(samples) != 8 {
		t.Fatalf("Snapshot = %d samples, %v", len(samples), err)
	}
	if s := samples[7]; s.UUID != device(srv, 7).UUID || s.Memory.TotalBytes != 40<<30 || *s.TemperatureC != gputest.TempBase+7 {
		t.Errorf("sample 7 = %+v", s)
	}
}

func TestSnapshotDeviceConditions(t *testing.T) {
	const total, free = 80 << 30, 512 << 20
	for _, tc := range []struct {
		name   string
		mutate func(d *server.Device)
		want   func(s *DeviceSample) // edits the healthy sample
	}{{
		name: "memory nearly full",
		mutate: func(d *server.Device) {
			d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
				return nvml.Memory{Total: total, Used: total - free, Free: free}, nvml.SUCCESS
			}
		},
		want: func(s *DeviceSample) { s.Memory = &MemoryUsage{UsedBytes: total - free, TotalBytes: total} },
	}, {
		name: "ECC errors",
		mutate: func(d *server.Device) {
			setECC(d, eccCounts{UncorrectedVolatile: 2, UncorrectedAggregate: 9, CorrectedVolatile: 40, CorrectedAggregate: 1234})
		},
		want: func(s *DeviceSample) {
			s.ECCUncorrectedVolatile, s.ECCUncorrectedAggregate = ptr[uint64](2), ptr[uint64](9)
			s.ECCCorrectedVolatile, s.ECCCorrectedAggregate = ptr[uint64](40), ptr[uint64](1234)
		},
	}, {
		name: "thermal throttling",
		mutate: func(d *server.Device) {
			d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
				return nvml.ClocksEventReasonSwPowerCap | nvml.ClocksEventReasonSwThermalSlowdown |
					nvml.ClocksThrottleReasonHwThermalSlowdown | nvml.ClocksThrottleReasonHwPowerBrakeSlowdown, nvml.SUCCESS
			}
			d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 93, nvml.SUCCESS }
		},
		want: func(s *DeviceSample) {
			s.ClockEventReasons = ptr[ClockEventReasons](4 | 32 | 64 | 128)
			s.ClockEventReasonNames = []string{"SwPowerCap", "SwThermalSlowdown", "HwThermalSlowdown", "HwPowerBrakeSlowdown"}
			s.TemperatureC = ptr[uint32](93)
		},
	}, {
		name:   "unsupported metrics",
		mutate: setUnsupported,
		want: func(s *DeviceSample) {
			*s = DeviceSample{Index: s.Index, UUID: s.UUID, Name: s.Name, Time: s.Time}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := healthyServer()
			tc.mutate(device(srv, 3))
			snap, err := openCollector(t, srv, WithClock(fixedClock{})).Snapshot(context.Background())
			samples := snap.Devices
			if err != nil || len(samples) != 8 {
				t.Fatalf("Snapshot = %d samples, %v", len(samples), err)
			}
			want := healthySample(srv, 3)
			tc.want(&want)
			if !reflect.DeepEqual(samples[3], want) {
				t.Errorf("device 3:\n got %s\nwant %s", dump(samples[3]), dump(want))
			}
			if want0 := healthySample(srv, 0); !reflect.DeepEqual(samples[0], want0) {
				t.Errorf("untouched device 0:\n got %s\nwant %s", dump(samples[0]), dump(want0))
			}
		})
	}
}

// setUnsupported makes every optional metric of d ERROR_NOT_SUPPORTED.
func setUnsupported(d *server.Device) {
	d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_NOT_SUPPORTED }
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED }
	d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) {
		return 0, nvml.ERROR_NOT_SUPPORTED
	}
	d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.ERROR_NOT_SUPPORTED }
}

func TestMemoryUsageUsedFraction(t *testing.T) {
	if got := (MemoryUsage{UsedBytes: 79 << 30, TotalBytes: 80 << 30}).UsedFraction(); got != 0.9875 {
		t.Errorf("UsedFraction = %v, want 0.9875", got)
	}
	if got := (MemoryUsage{}).UsedFraction(); got != 0 {
		t.Errorf("UsedFraction of no memory = %v, want 0", got)
	}
}

func TestSnapshotDeviceErrors(t *testing.T) {
	for _, tc := range []struct {
		mutate func(d *server.Device)
		ret    nvml.Return
		call   string
	}{
		{func(d *server.Device) {
			d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
		}, nvml.ERROR_GPU_IS_LOST, "get temperature"},
		{func(d *server.Device) {
			d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_UNKNOWN }
		}, nvml.ERROR_UNKNOWN, "get memory info"},
		{func(d *server.Device) {
			d.GetUUIDFunc = func() (string, nvml.Return) { return "", nvml.ERROR_GPU_IS_LOST }
		}, nvml.ERROR_GPU_IS_LOST, "get uuid"},
		{func(d *server.Device) {
			d.GetTotalEccErrorsFunc = func(_ nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
				if c == nvml.AGGREGATE_ECC {
					return 0, nvml.ERROR_CORRUPTED_INFOROM
				}
				return 0, nvml.SUCCESS
			}
		}, nvml.ERROR_CORRUPTED_INFOROM, "get aggregate uncorrected ECC errors"},
		{func(d *server.Device) {
			d.GetTotalEccErrorsFunc = func(e nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
				if e == nvml.MEMORY_ERROR_TYPE_CORRECTED && c == nvml.VOLATILE_ECC {
					return 0, nvml.ERROR_UNKNOWN
				}
				return 0, nvml.SUCCESS
			}
		}, nvml.ERROR_UNKNOWN, "get volatile corrected ECC errors"},
		{func(d *server.Device) {
			d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.ERROR_NO_PERMISSION }
		}, nvml.ERROR_NO_PERMISSION, "get compute running processes"},
	} {
		t.Run(tc.call, func(t *testing.T) {
			srv := healthyServer()
			tc.mutate(device(srv, 3))
			snap, err := openCollector(t, srv).Snapshot(context.Background())
			samples := snap.Devices
			if !errors.Is(err, tc.ret) {
				t.Fatalf("err = %v, want it to wrap %v", err, tc.ret)
			}
			if want := fmt.Sprintf("device 3: %s: %s", tc.call, tc.ret.Error()); err.Error() != want {
				t.Errorf("message %q, want %q", err, want)
			}
			var idx []int
			for _, s := range samples {
				idx = append(idx, s.Index)
			}
			if !slices.Equal(idx, []int{0, 1, 2, 4, 5, 6, 7}) {
				t.Errorf("samples of devices %v, want all but 3", idx)
			}
		})
	}
}

func TestSnapshotStopsAtFirstDeviceError(t *testing.T) {
	srv := healthyServer()
	d := device(srv, 1)
	d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
	if _, err := openCollector(t, srv).Snapshot(context.Background()); err == nil {
		t.Fatal("want an error")
	}
	if n := len(d.GetPowerUsageCalls()) + len(d.GetTotalEccErrorsCalls()); n != 0 {
		t.Errorf("a lost device got %d more calls after the failing one", n)
	}
	if n := len(device(srv, 2).GetPowerUsageCalls()); n != 1 {
		t.Errorf("next device: %d power calls, want 1", n)
	}
}

func TestSnapshotThrottleReasonsFallback(t *testing.T) {
	srv := healthyServer()
	srv.LookupSymbolFunc = func(name string) error {
		if name == clockEventReasonsSymbol {
			return errors.New("undefined symbol")
		}
		return nil
	}
	for _, d := range srv.Devices {
		d.(*server.Device).GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) {
			return nvml.ClocksThrottleReasonHwSlowdown, nvml.SUCCESS
		}
	}
	snap, err := openCollector(t, srv).Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if got := snap.Devices[0].ClockEventReasonNames; !slices.Equal(got, []string{"HwSlowdown"}) {
		t.Errorf("reason names = %v, want [HwSlowdown]", got)
	}
	if n := len(device(srv, 0).GetCurrentClocksEventReasonsCalls()); n != 0 {
		t.Errorf("missing event reasons symbol called %d times", n)
	}
}

func TestSnapshotCanceledAndNotOpen(t *testing.T) {
	if _, err := NewCollector(healthyServer()).Snapshot(context.Background()); !errors.Is(err, ErrNotOpen) {
		t.Errorf("Snapshot before Open = %v, want ErrNotOpen", err)
	}
	c := openCollector(t, healthyServer())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s, err := c.Snapshot(ctx); s.Devices != nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Snapshot = %+v, %v; want no devices, context.Canceled", s, err)
	}
}
