//go:build cgo

package gpu

import (
	"context"
	"errors"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Snapshot samples every GPU on this host, in index order, all stamped
// with one time from the collector's clock; its Node is left empty. A
// device whose read fails is left out and its error, naming the device
// index and the NVML call and wrapping the nvml.Return (so
// errors.Is(err, nvml.ERROR_GPU_IS_LOST) works), is joined into the
// returned error; the other devices' samples are still returned. Files
// that could not be read while mapping processes to pods are joined in
// too; those processes keep empty pod fields. Failing to count devices,
// or a done ctx, returns no devices.
func (c *Collector) Snapshot(ctx context.Context) (Snapshot, error) {
	snap := Snapshot{Time: c.clock.Now()}
	errs, err := c.eachDevice(ctx, func(i int, dev nvml.Device) error {
		s, err := sampleDevice(i, dev, c.eventReasons)
		if err == nil {
			s.Time = snap.Time
			snap.Devices = append(snap.Devices, s)
		}
		return err
	})
	if err != nil {
		return snap, err
	}
	if err := c.mapPods(snap.Devices); err != nil {
		errs = append(errs, err)
	}
	return snap, errors.Join(errs...)
}

// sampleDevice reads every metric of device i, stopping at the first
// error. eventReasons selects the clock event reasons call over the
// deprecated throttle reasons one.
func sampleDevice(i int, dev nvml.Device, eventReasons bool) (DeviceSample, error) {
	s := DeviceSample{Index: i}
	var err error
	if s.UUID, s.Name, err = identity(i, dev); err != nil {
		return s, err
	}
	ecc := func(dst **uint64, typ nvml.MemoryErrorType, counter nvml.EccCounterType) func() error {
		return func() (err error) { *dst, err = eccErrors(i, dev, typ, counter); return err }
	}
	reads := []func() error{
		func() (err error) { s.Memory, err = memoryUsage(i, dev); return err },
		func() (err error) { s.UtilizationPercent, err = utilization(i, dev); return err },
		func() (err error) { s.TemperatureC, err = temperature(i, dev); return err },
		func() (err error) { s.PowerWatts, err = powerWatts(i, dev); return err },
		func() (err error) { s.ClockEventReasons, err = clockEventReasons(i, dev, eventReasons); return err },
		ecc(&s.ECCUncorrectedVolatile, nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC),
		ecc(&s.ECCUncorrectedAggregate, nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.AGGREGATE_ECC),
		ecc(&s.ECCCorrectedVolatile, nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.VOLATILE_ECC),
		ecc(&s.ECCCorrectedAggregate, nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.AGGREGATE_ECC),
		func() (err error) { s.Processes, err = computeProcesses(i, dev); return err },
	}
	for _, read := range reads {
		if err := read(); err != nil {
			return s, err
		}
	}
	if s.ClockEventReasons != nil {
		s.ClockEventReasonNames = s.ClockEventReasons.Names()
	}
	return s, nil
}

// optional turns an NVML result into a metric: the value on success, nil
// when the device does not support it, otherwise an error naming device i
// and call and wrapping ret.
func optional[T any](i int, call string, v T, ret nvml.Return) (*T, error) {
	switch ret {
	case nvml.SUCCESS:
		return &v, nil
	case nvml.ERROR_NOT_SUPPORTED:
		return nil, nil
	default:
		return nil, fmt.Errorf("device %d: %s: %w", i, call, ret)
	}
}

// memoryUsage reads the framebuffer use of device i.
func memoryUsage(i int, dev nvml.Device) (*MemoryUsage, error) {
	mem, ret := dev.GetMemoryInfo()
	m, err := optional(i, "get memory info", mem, ret)
	if m == nil {
		return nil, err
	}
	return &MemoryUsage{UsedBytes: m.Used, TotalBytes: m.Total}, nil
}

// utilization reads the GPU utilization percentage of device i.
func utilization(i int, dev nvml.Device) (*uint32, error) {
	u, ret := dev.GetUtilizationRates()
	r, err := optional(i, "get utilization rates", u, ret)
	if r == nil {
		return nil, err
	}
	return &r.Gpu, nil
}

// temperature reads the GPU die temperature of device i in °C. go-nvml
// marks GetTemperature deprecated for GetTemperatureV, which drivers
// before 565 lack; GetTemperature works on all.
func temperature(i int, dev nvml.Device) (*uint32, error) {
	t, ret := dev.GetTemperature(nvml.TEMPERATURE_GPU)
	return optional(i, "get temperature", t, ret)
}

// powerWatts reads the power draw of device i; NVML reports milliwatts.
func powerWatts(i int, dev nvml.Device) (*float64, error) {
	mw, ret := dev.GetPowerUsage()
	p, err := optional(i, "get power usage", mw, ret)
	if p == nil {
		return nil, err
	}
	w := float64(*p) / 1000
	return &w, nil
}

// clockEventReasons reads the current clock event reasons of device i,
// through the throttle reasons call on drivers older than 535.
func clockEventReasons(i int, dev nvml.Device, eventReasons bool) (*ClockEventReasons, error) {
	var (
		bits uint64
		ret  nvml.Return
		call string
	)
	if eventReasons {
		bits, ret = dev.GetCurrentClocksEventReasons()
		call = "get clock event reasons"
	} else {
		bits, ret = dev.GetCurrentClocksThrottleReasons()
		call = "get clock throttle reasons"
	}
	return optional(i, call, ClockEventReasons(bits), ret)
}

// eccErrors reads device i's count of memory errors of one type
// (uncorrected or corrected) and counter (volatile or aggregate).
func eccErrors(i int, dev nvml.Device, typ nvml.MemoryErrorType, counter nvml.EccCounterType) (*uint64, error) {
	n, ret := dev.GetTotalEccErrors(typ, counter)
	return optional(i, fmt.Sprintf("get %s %s ECC errors", eccCounterName(counter), eccTypeName(typ)), n, ret)
}

// eccTypeName names an ECC error type as the metrics and errors do.
func eccTypeName(typ nvml.MemoryErrorType) string {
	if typ == nvml.MEMORY_ERROR_TYPE_CORRECTED {
		return "corrected"
	}
	return "uncorrected"
}

// eccCounterName names an ECC counter type as the metrics and errors do.
func eccCounterName(counter nvml.EccCounterType) string {
	if counter == nvml.AGGREGATE_ECC {
		return "aggregate"
	}
	return "volatile"
}
