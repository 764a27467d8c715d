//go:build cgo

package gpu

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gpu/gputest"
)

func TestWaitXid(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	srv := healthyServer()
	set := gputest.WithXidQueue(srv)
	c := openCollector(t, srv, WithClock(fixedClock{at}))
	ctx := context.Background()

	// First call registers every device and finds nothing.
	if evs, err := c.WaitXid(ctx, 500*time.Millisecond); evs != nil || err != nil {
		t.Fatalf("WaitXid on a quiet host = %v, %v", evs, err)
	}
	q := set()
	if got := q.Waits(); !slices.Equal(got, []uint32{200, 200, 100}) {
		t.Errorf("waits of 500ms = %v, want slices [200 200 100]", got)
	}
	for i := range srv.Devices {
		calls := device(srv, i).RegisterEventsCalls()
		if len(calls) != 1 || calls[0].V != nvml.EventTypeXidCriticalError || calls[0].EventSet != q {
			t.Errorf("device %d registrations = %+v, want one for Xid events on the set", i, calls)
		}
	}

	q.Push(gputest.Xid(srv, 3, 79),
		nvml.EventData{Device: srv.Devices[1], EventType: nvml.EventTypeSingleBitEccError},
		gputest.Xid(srv, 0, 48),
		nvml.EventData{EventType: nvml.EventTypeXidCriticalError, EventData: 13}) // no device
	evs, err := c.WaitXid(ctx, time.Second)
	if err != nil {
		t.Fatalf("WaitXid: %v", err)
	}
	want := []DeviceXid{
		{Index: 3, UUID: device(srv, 3).UUID, XidEvent: XidEvent{Code: 79, Time: at}},
		{Index: 0, UUID: device(srv, 0).UUID, XidEvent: XidEvent{Code: 48, Time: at}},
		{Index: -1, XidEvent: XidEvent{Code: 13, Time: at}},
	}
	if !reflect.DeepEqual(evs, want) {
		t.Errorf("events = %+v\nwant %+v", evs, want)
	}
	if n := len(srv.EventSetCreateCalls()); n != 1 {
		t.Errorf("EventSetCreate called %d times, want 1", n)
	}

	// A timeout of 0 only polls.
	before := len(q.Waits())
	if evs, err := c.WaitXid(ctx, 0); evs != nil || err != nil {
		t.Fatalf("poll = %v, %v", evs, err)
	}
	if got := q.Waits()[before:]; !slices.Equal(got, []uint32{0}) {
		t.Errorf("poll waits = %v, want [0]", got)
	}

	// Close frees the set; after a reopen the devices register again.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(q.FreeCalls()); n != 1 {
		t.Errorf("Free called %d times, want 1", n)
	}
	if _, err := c.WaitXid(ctx, 0); !errors.Is(err, ErrNotOpen) {
		t.Errorf("WaitXid after Close = %v, want ErrNotOpen", err)
	}
	if err := c.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitXid(ctx, 0); err != nil || set() == q || len(device(srv, 0).RegisterEventsCalls()) != 2 {
		t.Errorf("WaitXid after reopen = %v; want a new set and a second registration", err)
	}
}

func TestWaitXidRegistration(t *testing.T) {
	ctx := context.Background()
	t.Run("no device supports Xid events", func(t *testing.T) {
		srv := healthyServer()
		set := gputest.WithXidQueue(srv)
		for _, d := range srv.Devices {
			d.(*server.Device).RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return nvml.ERROR_NOT_SUPPORTED }
		}
		_, err := openCollector(t, srv).WaitXid(ctx, time.Second)
		if !errors.Is(err, ErrXidUnsupported) || !canary.IsTerminal(err) || err.Error() != ErrXidUnsupported.Error() {
			t.Fatalf("WaitXid = %v, want a terminal ErrXidUnsupported", err)
		}
		if n := len(set().FreeCalls()); n != 1 {
			t.Errorf("unused set freed %d times, want 1", n)
		}
	})
	t.Run("no event sets", func(t *testing.T) {
		srv := healthyServer()
		srv.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) { return nil, nvml.ERROR_NOT_SUPPORTED }
		_, err := openCollector(t, srv).WaitXid(ctx, time.Second)
		if !errors.Is(err, ErrXidUnsupported) || !errors.Is(err, nvml.ERROR_NOT_SUPPORTED) || !canary.IsTerminal(err) {
			t.Fatalf("WaitXid = %v, want a terminal ErrXidUnsupported", err)
		}
	})
	t.Run("create fails", func(t *testing.T) {
		srv := healthyServer()
		srv.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) { return nil, nvml.ERROR_NO_PERMISSION }
		_, err := openCollector(t, srv).WaitXid(ctx, time.Second)
		if err == nil || err.Error() != "create event set: ERROR_NO_PERMISSION" || canary.IsTerminal(err) {
			t.Fatalf("WaitXid = %v, want a retryable create error", err)
		}
	})
	t.Run("one device fails to register", func(t *testing.T) {
		srv := healthyServer()
		set := gputest.WithXidQueue(srv)
		device(srv, 4).RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return nvml.ERROR_UNKNOWN }
		c := openCollector(t, srv)
		_, err := c.WaitXid(ctx, 0)
		if !errors.Is(err, nvml.ERROR_UNKNOWN) || err.Error() != "device 4: register Xid events: ERROR_UNKNOWN" {
			t.Fatalf("first WaitXid = %v, want device 4's registration error", err)
		}
		set().Push(gputest.Xid(srv, 3, 94))
		evs, err := c.WaitXid(ctx, 0)
		if err != nil || len(evs) != 1 || evs[0].Index != 3 || evs[0].Code != 94 {
			t.Errorf("second WaitXid = %+v, %v; want the event of device 3", evs, err)
		}
		if n := len(srv.EventSetCreateCalls()); n != 1 {
			t.Errorf("EventSetCreate called %d times, want 1", n)
		}
	})
}

func TestWaitXidErrors(t *testing.T) {
	t.Run("wait fails", func(t *testing.T) {
		srv := healthyServer()
		set := gputest.WithXidQueue(srv)
		c := openCollector(t, srv)
		if _, err := c.WaitXid(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		set().SetWait(func(uint32) (nvml.EventData, nvml.Return) { return nvml.EventData{}, nvml.ERROR_GPU_IS_LOST })
		_, err := c.WaitXid(context.Background(), time.Second)
		if !errors.Is(err, nvml.ERROR_GPU_IS_LOST) || err.Error() != "wait for Xid events: ERROR_GPU_IS_LOST" {
			t.Errorf("WaitXid = %v", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		srv := healthyServer()
		gputest.WithXidQueue(srv)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := openCollector(t, srv).WaitXid(ctx, time.Second); !errors.Is(err, context.Canceled) {
			t.Errorf("WaitXid = %v, want context.Canceled", err)
		}
	})
	t.Run("drain is bounded", func(t *testing.T) {
		srv := healthyServer()
		set := gputest.WithXidQueue(srv)
		c := openCollector(t, srv)
		if _, err := c.WaitXid(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		set().SetWait(func(uint32) (nvml.EventData, nvml.Return) { return gputest.Xid(srv, 1, 31), nvml.SUCCESS })
		evs, err := c.WaitXid(context.Background(), time.Second)
		if err != nil || len(evs) != maxXidDrain {
			t.Errorf("WaitXid on a flood = %d events, %v; want %d", len(evs), err, maxXidDrain)
		}
	})
}
