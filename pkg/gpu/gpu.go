// Package gpu reads GPU health from NVML: an inventory of the devices on
// this host; per-device samples of memory, utilization, temperature,
// power, clock event (throttle) reasons, uncorrected and corrected ECC
// errors, and the compute processes using the GPU, each mapped to its
// Kubernetes pod through /proc/<pid>/cgroup and the kubelet's pod log
// directories; and Xid errors through an NVML event set (WaitXid).
//
// The types of the gpu-agent's JSON API (pkg/gpu/agent) are defined in
// pkg/gpu/gpuapi, which needs no cgo, and re-exported here (api.go).
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

// DeviceXid is an Xid event with the device that raised it.
type DeviceXid struct {
	// Index is the device's NVML index, or -1 when NVML named a device
	// the collector did not register (e.g. a MIG device).
	Index int
	// UUID is the device's UUID, or "" when NVML named no device.
	UUID string
	XidEvent
}
