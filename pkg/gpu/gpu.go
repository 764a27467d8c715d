// Package gpu reads GPU health from NVML: an inventory of the devices on
// this host; per-device samples of memory, utilization, temperature,
// power, clock event (throttle) reasons, uncorrected and corrected ECC
// errors, and the compute processes using the GPU, each mapped to its
// Kubernetes pod through /proc/<pid>/cgroup and the kubelet's pod log
// directories; and Xid errors through an NVML event set (WaitXid).
//
// The types in api.go are the JSON API of the gpu-agent (pkg/gpu/agent).
//
// A Collector works over an injected nvml.Interface: NewHostCollector
// (nvml.New()) in production, go-nvml's mocks (pkg/nvml/mock/dgxh100 and
// friends) in tests. On a host without the NVML library, Open fails
// cleanly with an error wrapping ErrNVMLUnavailable. go-nvml needs cgo; in
// a build without it (CGO_ENABLED=0) the package still builds, and Open
// says NVML is not available because the binary was built without cgo.
package gpu

import (
	"errors"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Sentinel errors.
var (
	// ErrNVMLUnavailable marks a host where NVML cannot be used at all: the
	// library is missing or the NVIDIA driver is not loaded. Open wraps it
	// together with NVML's own nvml.Return, and marks it canary.Terminal.
	ErrNVMLUnavailable = errors.New("NVML not available on this host")
	// ErrNotOpen is returned by Inventory and Snapshot before Open
	// succeeded or after Close.
	ErrNotOpen = errors.New("gpu collector is not open")
)

// ErrXidUnsupported means no GPU on this host can report Xid events
// through an NVML event set. WaitXid wraps it in a terminal error.
var ErrXidUnsupported = errors.New("no GPU on this host reports Xid events")

// Clock tells the time at which a snapshot is taken. canary.SystemClock
// and sim.Clock satisfy it.
type Clock interface {
	Now() time.Time
}

// Option configures a Collector.
type Option func(*settings)

// settings are what Options set.
type settings struct {
	clock      Clock
	procRoot   string // "" turns pod mapping off
	podsLogDir string
}

func newSettings(opts []Option) settings {
	s := settings{clock: canary.SystemClock{}, procRoot: DefaultProcRoot, podsLogDir: DefaultPodsLogDir}
	for _, opt := range opts {
		opt(&s)
	}
	return s
}

// WithClock sets the clock that stamps snapshots; canary.SystemClock by
// default. A nil clock is ignored.
func WithClock(c Clock) Option {
	return func(s *settings) {
		if c != nil {
			s.clock = c
		}
	}
}

// Device identifies one GPU.
type Device struct {
	// Index is NVML's device index, 0-based.
	Index int `json:"index"`
	// UUID is the device's stable identity, e.g. "GPU-8c3f…".
	UUID string `json:"uuid"`
	// Name is the product name, e.g. "NVIDIA H100 80GB HBM3".
	Name string `json:"name"`
	// MemoryTotalBytes is the framebuffer size; 0 when the device does not
	// report memory (nvml.ERROR_NOT_SUPPORTED).
	MemoryTotalBytes uint64 `json:"memoryTotalBytes"`
}

// DeviceSample is one reading of one GPU's health. A pointer field is nil
// when the device does not support that metric (nvml.ERROR_NOT_SUPPORTED,
// e.g. ECC counters on a GPU with ECC disabled).
type DeviceSample struct {
	// Index is NVML's device index, 0-based.
	Index int `json:"index"`
	// UUID is the device's stable identity.
	UUID string `json:"uuid"`
	// Name is the product name.
	Name string `json:"name"`
	// Time is when the snapshot was taken, from the collector's clock.
	Time time.Time `json:"time"`

	// Memory is the framebuffer use.
	Memory *MemoryUsage `json:"memory,omitempty"`
	// UtilizationPercent is the share of the last sample period in which
	// a kernel was running, 0 to 100.
	UtilizationPercent *uint32 `json:"utilizationPercent,omitempty"`
	// TemperatureC is the GPU die temperature in degrees Celsius.
	TemperatureC *uint32 `json:"temperatureC,omitempty"`
	// PowerWatts is the board's power draw.
	PowerWatts *float64 `json:"powerWatts,omitempty"`
	// ClockEventReasons is the bitmask of reasons the clocks are held
	// below their maximum (NVML's clock event, formerly throttle, reasons).
	ClockEventReasons *ClockEventReasons `json:"clockEventReasons,omitempty"`
	// ClockEventReasonNames decodes ClockEventReasons, e.g.
	// ["SwPowerCap", "HwSlowdown"]; empty when no reason is set.
	ClockEventReasonNames []string `json:"clockEventReasonNames,omitempty"`
	// ECCUncorrectedVolatile counts uncorrected memory errors since the
	// driver was last loaded.
	ECCUncorrectedVolatile *uint64 `json:"eccUncorrectedVolatile,omitempty"`
	// ECCUncorrectedAggregate counts uncorrected memory errors over the
	// device's lifetime.
	ECCUncorrectedAggregate *uint64 `json:"eccUncorrectedAggregate,omitempty"`
	// ECCCorrectedVolatile counts corrected (single-bit) memory errors
	// since the driver was last loaded.
	ECCCorrectedVolatile *uint64 `json:"eccCorrectedVolatile,omitempty"`
	// ECCCorrectedAggregate counts corrected memory errors over the
	// device's lifetime.
	ECCCorrectedAggregate *uint64 `json:"eccCorrectedAggregate,omitempty"`
	// Xid lists the Xid errors received for this device since the
	// previous snapshot, oldest first. The collector leaves it empty: the
	// agent, which watches Xid events with WaitXid, fills it in.
	Xid []XidEvent `json:"xid,omitempty"`
	// Processes are the compute processes running on the device, with
	// their Kubernetes pod where it is known; empty when there are none
	// or the device cannot list them.
	Processes []ProcessSample `json:"processes,omitempty"`
}

// MemoryUsage is a device's framebuffer use in bytes.
type MemoryUsage struct {
	// UsedBytes is allocated framebuffer memory, including what the
	// driver reserves.
	UsedBytes uint64 `json:"usedBytes"`
	// TotalBytes is the framebuffer size.
	TotalBytes uint64 `json:"totalBytes"`
}

// UsedFraction is UsedBytes / TotalBytes, or 0 when TotalBytes is 0.
func (m MemoryUsage) UsedFraction() float64 {
	if m.TotalBytes == 0 {
		return 0
	}
	return float64(m.UsedBytes) / float64(m.TotalBytes)
}

// DeviceXid is an Xid event with the device that raised it.
type DeviceXid struct {
	// Index is the device's NVML index, or -1 when NVML named a device
	// the collector did not register (e.g. a MIG device).
	Index int
	// UUID is the device's UUID, or "" when NVML named no device.
	UUID string
	XidEvent
}
