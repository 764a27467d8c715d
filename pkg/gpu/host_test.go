//go:build cgo

package gpu

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/canarybot/canarybot/pkg/canary"
)

// TestRealNVML runs the real library on this host. Without a GPU (no
// libnvidia-ml, or no driver) Open must fail cleanly with
// ErrNVMLUnavailable; with one, Inventory and Snapshot must work.
func TestRealNVML(t *testing.T) {
	ctx := context.Background()
	c := NewCollector(nvml.New())
	err := c.Open(ctx)
	if err != nil {
		if !errors.Is(err, ErrNVMLUnavailable) {
			t.Fatalf("Open = %v, want ErrNVMLUnavailable or success", err)
		}
		if !strings.HasPrefix(err.Error(), "NVML not available on this host: ") {
			t.Errorf("message %q lacks the prefix", err)
		}
		if !errors.Is(err, nvml.ERROR_LIBRARY_NOT_FOUND) && !errors.Is(err, nvml.ERROR_DRIVER_NOT_LOADED) {
			t.Errorf("Open = %v, want it to wrap the nvml.Return", err)
		}
		if !canary.IsTerminal(err) {
			t.Error("want a terminal error")
		}
		if _, err := c.Inventory(ctx); !errors.Is(err, ErrNotOpen) {
			t.Errorf("Inventory after failed Open = %v, want ErrNotOpen", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close after failed Open: %v", err)
		}
		t.Logf("no NVML here, as expected on a GPU-less host: %v", err)
		return
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	devs, err := c.Inventory(ctx)
	if err != nil {
		t.Fatalf("Inventory: %v", err)
	}
	for i, d := range devs {
		if d.Index != i || !strings.HasPrefix(d.UUID, "GPU-") && !strings.HasPrefix(d.UUID, "MIG-") || d.Name == "" {
			t.Errorf("device %d = %+v", i, d)
		}
		t.Logf("device %+v", d)
	}
	snap, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	samples := snap.Devices
	if len(samples) != len(devs) {
		t.Fatalf("%d samples for %d devices", len(samples), len(devs))
	}
	for _, s := range samples {
		t.Logf("sample %+v reasons=%v", s, s.ClockEventReasonNames)
	}
}
