//go:build cgo

package gpu

import (
	"context"
	"errors"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestInventoryMocks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		srv      *server.Server
		wantName string
		wantMem  uint64
	}{
		{"dgxh100", dgxh100.New(), "NVIDIA H100 80GB HBM3", 80 << 30},
		{"dgxa100", dgxa100.New(), "Mock NVIDIA A100-SXM4-40GB", 40 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := openCollector(t, tc.srv)
			devs, err := c.Inventory(context.Background())
			if err != nil {
				t.Fatalf("Inventory: %v", err)
			}
			if len(devs) != 8 {
				t.Fatalf("got %d devices, want 8", len(devs))
			}
			seen := map[string]bool{}
			for i, d := range devs {
				want := Device{Index: i, UUID: device(tc.srv, i).UUID, Name: tc.wantName, MemoryTotalBytes: tc.wantMem}
				if d != want {
					t.Errorf("device %d = %+v, want %+v", i, d, want)
				}
				if seen[d.UUID] {
					t.Errorf("device %d: duplicate UUID %s", i, d.UUID)
				}
				seen[d.UUID] = true
			}
		})
	}
}

func TestOpenUnavailable(t *testing.T) {
	for _, ret := range []nvml.Return{nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED} {
		t.Run(ret.Error(), func(t *testing.T) {
			srv := dgxh100.New()
			srv.InitFunc = func() nvml.Return { return ret }
			c := NewCollector(srv)
			err := c.Open(context.Background())
			if !errors.Is(err, ErrNVMLUnavailable) || !errors.Is(err, ret) {
				t.Fatalf("Open = %v, want ErrNVMLUnavailable wrapping %v", err, ret)
			}
			if want := "NVML not available on this host: " + ret.Error(); err.Error() != want {
				t.Errorf("message %q, want %q", err, want)
			}
			if !canary.IsTerminal(err) {
				t.Error("want a terminal error")
			}
			if _, err := c.Snapshot(context.Background()); !errors.Is(err, ErrNotOpen) {
				t.Errorf("Snapshot after failed Open = %v, want ErrNotOpen", err)
			}
			if err := c.Close(); err != nil || len(srv.ShutdownCalls()) != 0 {
				t.Errorf("Close after failed Open = %v with %d Shutdown calls, want nil and 0", err, len(srv.ShutdownCalls()))
			}
		})
	}
}

func TestOpenOtherInitError(t *testing.T) {
	srv := dgxh100.New()
	srv.InitFunc = func() nvml.Return { return nvml.ERROR_NO_PERMISSION }
	err := NewCollector(srv).Open(context.Background())
	if !errors.Is(err, nvml.ERROR_NO_PERMISSION) || errors.Is(err, ErrNVMLUnavailable) {
		t.Fatalf("Open = %v, want ERROR_NO_PERMISSION and not ErrNVMLUnavailable", err)
	}
	if err.Error() != "nvml init: ERROR_NO_PERMISSION" {
		t.Errorf("message %q", err)
	}
}

func TestOpenCloseLifecycle(t *testing.T) {
	srv := dgxh100.New()
	c := NewCollector(srv)
	ctx := context.Background()
	if _, err := c.Inventory(ctx); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Inventory before Open = %v, want ErrNotOpen", err)
	}
	for range 2 {
		if err := c.Open(ctx); err != nil {
			t.Fatalf("Open: %v", err)
		}
	}
	if n := len(srv.InitCalls()); n != 1 {
		t.Errorf("Init called %d times, want 1 for two Opens", n)
	}
	for range 2 {
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if n := len(srv.ShutdownCalls()); n != 1 {
		t.Errorf("Shutdown called %d times, want 1 for two Closes", n)
	}
	if _, err := c.Inventory(ctx); !errors.Is(err, ErrNotOpen) {
		t.Errorf("Inventory after Close = %v, want ErrNotOpen", err)
	}

	srv.ShutdownFunc = func() nvml.Return { return nvml.ERROR_UNKNOWN }
	if err := c.Open(ctx); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if err := c.Close(); !errors.Is(err, nvml.ERROR_UNKNOWN) {
		t.Errorf("Close with failing Shutdown = %v, want ERROR_UNKNOWN", err)
	}
}

func TestOpenCanceledContext(t *testing.T) {
	srv := dgxh100.New()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewCollector(srv).Open(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open = %v, want context.Canceled", err)
	}
	if n := len(srv.InitCalls()); n != 0 {
		t.Errorf("Init called %d times on a canceled context", n)
	}
}

func TestInventoryErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("device count", func(t *testing.T) {
		srv := dgxh100.New()
		srv.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
		devs, err := openCollector(t, srv).Inventory(ctx)
		if devs != nil || !errors.Is(err, nvml.ERROR_UNKNOWN) || err.Error() != "get device count: ERROR_UNKNOWN" {
			t.Fatalf("Inventory = %v, %v", devs, err)
		}
	})
	t.Run("one device lost", func(t *testing.T) {
		srv := dgxh100.New()
		device(srv, 5).GetNameFunc = func() (string, nvml.Return) { return "", nvml.ERROR_GPU_IS_LOST }
		devs, err := openCollector(t, srv).Inventory(ctx)
		if !errors.Is(err, nvml.ERROR_GPU_IS_LOST) || err.Error() != "device 5: get name: ERROR_GPU_IS_LOST" {
			t.Fatalf("err = %v", err)
		}
		if len(devs) != 7 || devs[4].Index != 4 || devs[5].Index != 6 {
			t.Fatalf("want devices 0-4 and 6-7, got %+v", devs)
		}
	})
	t.Run("handle", func(t *testing.T) {
		srv := dgxh100.New()
		srv.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
			if i == 2 {
				return nil, nvml.ERROR_NO_PERMISSION
			}
			return srv.Devices[i], nvml.SUCCESS
		}
		devs, err := openCollector(t, srv).Inventory(ctx)
		if len(devs) != 7 || err == nil || err.Error() != "device 2: get handle: ERROR_NO_PERMISSION" {
			t.Fatalf("Inventory = %d devices, %v", len(devs), err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		c := openCollector(t, dgxh100.New())
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		devs, err := c.Inventory(cctx)
		if devs != nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("Inventory = %v, %v; want nil, context.Canceled", devs, err)
		}
	})
}
