//go:build cgo

package gpu

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/canarybot/canarybot/pkg/canary"
)

const (
	// xidWaitSlice is the longest one NVML wait blocks, so that WaitXid
	// notices a done ctx within it.
	xidWaitSlice = 200 * time.Millisecond
	// maxXidDrain bounds the events one WaitXid returns.
	maxXidDrain = 256
)

// WaitXid waits up to timeout for Xid errors (NVML's
// EventTypeXidCriticalError) on any GPU and returns those that arrived,
// each stamped with the collector's clock when received; no events and
// no error when none came in time. A timeout of 0 only polls. NVML keeps
// events until they are read, so a caller that calls WaitXid in a loop
// misses none.
//
// The first call creates an NVML event set and registers every GPU that
// supports Xid events; Close frees it. When no GPU does, WaitXid returns
// a terminal error wrapping ErrXidUnsupported. When only some fail to
// register, the first call returns their errors and later calls watch
// the others. WaitXid returns ErrNotOpen before Open, and ctx's error
// within 200ms of ctx ending. Calls are serialized; Close waits for a
// call in progress.
func (c *Collector) WaitXid(ctx context.Context, timeout time.Duration) ([]DeviceXid, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.open {
		return nil, ErrNotOpen
	}
	c.xmu.Lock()
	defer c.xmu.Unlock()
	if c.xidSet == nil {
		if err := c.registerXid(ctx); err != nil {
			return nil, err
		}
	}
	for remaining := timeout; ; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		slice := min(remaining, xidWaitSlice)
		data, ret := c.xidSet.Wait(uint32(slice / time.Millisecond))
		switch ret {
		case nvml.SUCCESS:
			return c.drainXid(c.appendXid(nil, data)), nil
		case nvml.ERROR_TIMEOUT:
		default:
			return nil, fmt.Errorf("wait for Xid events: %w", ret)
		}
		if remaining -= slice; remaining <= 0 {
			return nil, nil
		}
	}
}

// drainXid appends the events NVML already holds to events, without
// waiting. An error stops it quietly: the next wait reports it.
func (c *Collector) drainXid(events []DeviceXid) []DeviceXid {
	for len(events) < maxXidDrain {
		data, ret := c.xidSet.Wait(0)
		if ret != nvml.SUCCESS {
			break
		}
		events = c.appendXid(events, data)
	}
	return events
}

// appendXid appends data to events when it is an Xid event.
func (c *Collector) appendXid(events []DeviceXid, data nvml.EventData) []DeviceXid {
	if data.EventType != nvml.EventTypeXidCriticalError {
		return events
	}
	ev := DeviceXid{Index: -1, XidEvent: XidEvent{Code: data.EventData, Time: c.clock.Now()}}
	if data.Device != nil {
		if uuid, ret := data.Device.GetUUID(); ret == nvml.SUCCESS {
			ev.UUID = uuid
			if i, ok := c.xidIndex[uuid]; ok {
				ev.Index = i
			}
		}
	}
	return append(events, ev)
}

// registerXid creates the event set and registers every device for Xid
// events. It keeps the set when at least one device registered.
func (c *Collector) registerXid(ctx context.Context) error {
	set, ret := c.lib.EventSetCreate()
	switch ret {
	case nvml.SUCCESS:
	case nvml.ERROR_NOT_SUPPORTED:
		return canary.Terminal(fmt.Errorf("%w: create event set: %w", ErrXidUnsupported, ret))
	default:
		return fmt.Errorf("create event set: %w", ret)
	}
	index := map[string]int{}
	errs, err := c.eachDeviceLocked(ctx, func(i int, dev nvml.Device) error {
		uuid, ret := dev.GetUUID()
		if ret != nvml.SUCCESS {
			return fmt.Errorf("device %d: get uuid: %w", i, ret)
		}
		switch ret := dev.RegisterEvents(nvml.EventTypeXidCriticalError, set); ret {
		case nvml.SUCCESS:
			index[uuid] = i
			return nil
		case nvml.ERROR_NOT_SUPPORTED:
			return nil
		default:
			return fmt.Errorf("device %d: register Xid events: %w", i, ret)
		}
	})
	if err == nil && len(index) == 0 {
		err = canary.Terminal(fmt.Errorf("%w: %w", ErrXidUnsupported, errors.Join(errs...)))
		if len(errs) == 0 {
			err = canary.Terminal(ErrXidUnsupported)
		}
	}
	if err != nil {
		if ret := set.Free(); ret != nvml.SUCCESS {
			err = errors.Join(err, fmt.Errorf("free event set: %w", ret))
		}
		return err
	}
	c.xidSet, c.xidIndex = set, index
	return errors.Join(errs...)
}
