//go:build !cgo

package gpu

import (
	"context"
	"fmt"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// errNoCgo says why a binary built without cgo cannot read GPUs: go-nvml
// loads libnvidia-ml through cgo.
var errNoCgo = canary.Terminal(fmt.Errorf("%w: this binary was built without cgo (CGO_ENABLED=0), and NVML is loaded through cgo", ErrNVMLUnavailable))

// Collector, in a build without cgo, reads no GPU: Open fails with an
// error wrapping ErrNVMLUnavailable that says so, and the agent over it
// serves canarybot_gpu_up 0 and answers its JSON API with 503.
type Collector struct {
	settings
}

// NewHostCollector returns a Collector that can only say NVML is not
// available in this build.
func NewHostCollector(opts ...Option) *Collector {
	return &Collector{settings: newSettings(opts)}
}

// Open fails: NVML needs cgo.
func (c *Collector) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return errNoCgo
}

// Close has nothing to close.
func (c *Collector) Close() error { return nil }

// Inventory returns ErrNotOpen: Open never succeeds.
func (c *Collector) Inventory(context.Context) ([]Device, error) { return nil, ErrNotOpen }

// Snapshot returns ErrNotOpen: Open never succeeds.
func (c *Collector) Snapshot(context.Context) (Snapshot, error) {
	return Snapshot{Time: c.clock.Now()}, ErrNotOpen
}

// WaitXid returns ErrNotOpen: Open never succeeds.
func (c *Collector) WaitXid(context.Context, time.Duration) ([]DeviceXid, error) {
	return nil, ErrNotOpen
}
