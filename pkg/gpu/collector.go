//go:build cgo

package gpu

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/canarybot/canarybot/pkg/canary"
)

// clockEventReasonsSymbol is the NVML function that replaced
// nvmlDeviceGetCurrentClocksThrottleReasons in driver 535; older drivers
// lack it, and calling a missing symbol would abort the process.
const clockEventReasonsSymbol = "nvmlDeviceGetCurrentClocksEventReasons"

// Collector reads GPU inventory and health samples through NVML. It is
// safe for concurrent use; Close waits for reads in progress.
type Collector struct {
	settings
	lib nvml.Interface

	mu           sync.RWMutex
	open         bool
	eventReasons bool // the driver has clockEventReasonsSymbol

	// xmu serializes WaitXid calls, which hold mu for reading; Close,
	// holding mu for writing, may touch the event set without it.
	xmu      sync.Mutex
	xidSet   nvml.EventSet  // nil until the first WaitXid
	xidIndex map[string]int // registered device UUID -> index
}

// NewCollector returns a Collector over lib, e.g. nvml.New(). It does not
// touch NVML until Open.
func NewCollector(lib nvml.Interface, opts ...Option) *Collector {
	return &Collector{settings: newSettings(opts), lib: lib}
}

// NewHostCollector returns a Collector over this host's NVML library,
// which Open loads.
func NewHostCollector(opts ...Option) *Collector {
	return NewCollector(nvml.New(), opts...)
}

// Open initializes NVML. It is a no-op when already open. Without the
// NVML library or driver it returns a terminal error wrapping both
// ErrNVMLUnavailable and the nvml.Return, with the message "NVML not
// available on this host: " followed by NVML's error string. Other
// failures wrap the nvml.Return.
func (c *Collector) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open {
		return nil
	}
	switch ret := c.lib.Init(); ret {
	case nvml.SUCCESS:
	case nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED:
		return canary.Terminal(fmt.Errorf("%w: %w", ErrNVMLUnavailable, ret))
	default:
		return fmt.Errorf("nvml init: %w", ret)
	}
	c.open = true
	c.eventReasons = c.lib.Extensions().LookupSymbol(clockEventReasonsSymbol) == nil
	return nil
}

// Close frees the Xid event set, if WaitXid created one, and shuts NVML
// down. It is a no-op when not open.
func (c *Collector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.open {
		return nil
	}
	c.open = false
	var errs []error
	if c.xidSet != nil {
		if ret := c.xidSet.Free(); ret != nvml.SUCCESS {
			errs = append(errs, fmt.Errorf("free event set: %w", ret))
		}
		c.xidSet, c.xidIndex = nil, nil
	}
	if ret := c.lib.Shutdown(); ret != nvml.SUCCESS {
		errs = append(errs, fmt.Errorf("nvml shutdown: %w", ret))
	}
	return errors.Join(errs...)
}

// Inventory lists the GPUs on this host in index order. A device that
// cannot be read is left out and its error, naming the device index and
// the NVML call, is joined into the returned error, so that the other
// devices are still returned. Failing to count devices, or a done ctx,
// returns no devices.
func (c *Collector) Inventory(ctx context.Context) ([]Device, error) {
	var devices []Device
	errs, err := c.eachDevice(ctx, func(i int, dev nvml.Device) error {
		d, err := inventoryDevice(i, dev)
		if err == nil {
			devices = append(devices, d)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return devices, errors.Join(errs...)
}

// eachDevice calls fn with the handle of every device while holding the
// collector open. It returns the per-device errors, and separately an
// error that stopped it: not open, the device count, or a done ctx.
func (c *Collector) eachDevice(ctx context.Context, fn func(i int, dev nvml.Device) error) ([]error, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.open {
		return nil, ErrNotOpen
	}
	return c.eachDeviceLocked(ctx, fn)
}

// eachDeviceLocked is eachDevice for a caller that holds c.mu open.
func (c *Collector) eachDeviceLocked(ctx context.Context, fn func(i int, dev nvml.Device) error) ([]error, error) {
	n, ret := c.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("get device count: %w", ret)
	}
	var errs []error
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dev, ret := c.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			errs = append(errs, fmt.Errorf("device %d: get handle: %w", i, ret))
			continue
		}
		if err := fn(i, dev); err != nil {
			errs = append(errs, err)
		}
	}
	return errs, nil
}

// inventoryDevice reads the identity of device i.
func inventoryDevice(i int, dev nvml.Device) (Device, error) {
	uuid, name, err := identity(i, dev)
	if err != nil {
		return Device{}, err
	}
	d := Device{Index: i, UUID: uuid, Name: name}
	mem, err := memoryUsage(i, dev)
	if err != nil {
		return Device{}, err
	}
	if mem != nil {
		d.MemoryTotalBytes = mem.TotalBytes
	}
	return d, nil
}

// identity reads the UUID and name of device i; both are required.
func identity(i int, dev nvml.Device) (uuid, name string, err error) {
	uuid, ret := dev.GetUUID()
	if ret != nvml.SUCCESS {
		return "", "", fmt.Errorf("device %d: get uuid: %w", i, ret)
	}
	name, ret = dev.GetName()
	if ret != nvml.SUCCESS {
		return "", "", fmt.Errorf("device %d: get name: %w", i, ret)
	}
	return uuid, name, nil
}
