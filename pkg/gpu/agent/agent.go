// Package agent is the node side of canarybot's GPU gates: it samples a
// gpu.Collector on scrape and on an interval, watches Xid events, keeps a
// ring of recent snapshots, and serves them as Prometheus metrics
// (canarybot_gpu_*) and as JSON (gpu.APIPath) for gates that query a node
// directly. The gpu-agent command (cmd/gpu-agent) runs it.
//
// On a host without NVML the agent still runs: every collect fails with
// an error wrapping gpu.ErrNVMLUnavailable, canarybot_gpu_up is 0, and the
// JSON endpoint answers 503. It retries NVML on every collect, so a
// driver that loads after the agent starts is picked up.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gpu"
)

// Defaults of Config.
const (
	DefaultInterval = 10 * time.Second
	DefaultHistory  = 15 * time.Minute
	DefaultCacheTTL = 2 * time.Second
)

const (
	// xidWait is how long one WaitXid call of the watcher blocks.
	xidWait = time.Second
	// maxPendingXid bounds the Xid events waiting for the next snapshot;
	// older ones are dropped from snapshots (the counters keep them).
	maxPendingXid = 1024
)

// Collect operations, the op label of canarybot_gpu_collect_errors_total.
const (
	OpOpen     = "open"     // initializing NVML
	OpSnapshot = "snapshot" // reading devices (any device or pod mapping error)
	OpXid      = "xid"      // registering for or waiting on Xid events
)

// Source is what the agent samples; *gpu.Collector implements it. The
// agent opens it; the caller closes it after Run returns.
type Source interface {
	Open(ctx context.Context) error
	Snapshot(ctx context.Context) (gpu.Snapshot, error)
	WaitXid(ctx context.Context, timeout time.Duration) ([]gpu.DeviceXid, error)
}

// Config configures an Agent. Zero durations take the defaults.
type Config struct {
	// Node is the Kubernetes node name: the node label of every metric and
	// the node field of the JSON answers; "" leaves both out or empty.
	Node string
	// Interval is how often Run samples into the history ring.
	Interval time.Duration
	// History is how long the ring keeps snapshots.
	History time.Duration
	// CacheTTL is how long a collect is reused, so that scrapes and API
	// calls in quick succession cost NVML one read.
	CacheTTL time.Duration
	// Clock tells the time; canary.SystemClock by default.
	Clock canary.Clock
	// Log receives Xid events and changes of collect health; discarded
	// when nil.
	Log *slog.Logger
}

// xidKey identifies one canarybot_gpu_xid_errors_total series.
type xidKey struct {
	uuid  string
	index int
	code  uint64
}

// Agent samples a Source and keeps what the metrics and the JSON API
// serve. It is safe for concurrent use.
type Agent struct {
	src Source
	cfg Config

	collectMu sync.Mutex // serializes collects

	mu        sync.Mutex
	opened    bool
	attempted bool
	at        time.Time    // of the last collect attempt
	latest    gpu.Snapshot // of the last attempt; no devices when it failed
	err       error        // of the last attempt
	up        bool
	ring      *ring
	pending   []gpu.DeviceXid
	xids      map[xidKey]uint64
	errs      map[string]uint64
	logged    string // the collect error last logged
}

// New returns an Agent over src. It does not touch src until the first
// collect. It fails on a negative duration or a History shorter than
// Interval.
func New(src Source, cfg Config) (*Agent, error) {
	if src == nil {
		return nil, errors.New("gpu agent: no source")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{{"interval", &cfg.Interval, DefaultInterval}, {"history", &cfg.History, DefaultHistory}, {"cache TTL", &cfg.CacheTTL, DefaultCacheTTL}} {
		if *d.v < 0 {
			return nil, fmt.Errorf("gpu agent: %s %v is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.History < cfg.Interval {
		return nil, fmt.Errorf("gpu agent: history %v is shorter than the interval %v", cfg.History, cfg.Interval)
	}
	if cfg.Clock == nil {
		cfg.Clock = canary.SystemClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Agent{
		src:  src,
		cfg:  cfg,
		ring: newRing(cfg.History),
		xids: map[xidKey]uint64{},
		errs: map[string]uint64{OpOpen: 0, OpSnapshot: 0, OpXid: 0},
	}, nil
}

// Snapshot returns the latest snapshot, collecting a new one when the
// last collect is older than the cache TTL. A new snapshot carries the
// Xid events received since the previous one and joins the history ring.
// When a collect fails altogether (NVML unavailable, no device readable)
// the snapshot has no devices and the error says why; when only some
// devices or pod lookups fail, the snapshot has the rest and the error
// joins the failures. A cached result repeats the cached error.
func (a *Agent) Snapshot(ctx context.Context) (gpu.Snapshot, error) {
	a.collectMu.Lock()
	defer a.collectMu.Unlock()
	now := a.cfg.Clock.Now()
	a.mu.Lock()
	if a.attempted && now.Sub(a.at) < a.cfg.CacheTTL {
		defer a.mu.Unlock()
		return a.latest, a.err
	}
	opened := a.opened
	a.mu.Unlock()

	snap, opened, err := a.collect(ctx, opened)

	a.mu.Lock()
	defer a.mu.Unlock()
	a.attempted, a.at, a.err, a.opened = true, now, err, opened
	a.up = err == nil || len(snap.Devices) > 0
	snap.Node = a.cfg.Node
	if a.up {
		a.attachXid(&snap)
		a.ring.add(snap, now)
	}
	a.latest = snap
	a.logHealth(err)
	return snap, err
}

// collect opens the source unless opened, and reads it, counting errors.
// It reports whether the source is open.
func (a *Agent) collect(ctx context.Context, opened bool) (gpu.Snapshot, bool, error) {
	if !opened {
		if err := a.src.Open(ctx); err != nil {
			a.count(OpOpen)
			return gpu.Snapshot{Time: a.cfg.Clock.Now()}, false, err
		}
	}
	snap, err := a.src.Snapshot(ctx)
	if err != nil {
		a.count(OpSnapshot)
	}
	return snap, true, err
}

// count adds one to the collect errors of op.
func (a *Agent) count(op string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errs[op]++
}

// attachXid moves the pending Xid events onto snap's devices by UUID.
// Events of a device snap lacks are dropped from snapshots. Callers hold
// a.mu.
func (a *Agent) attachXid(snap *gpu.Snapshot) {
	if len(a.pending) == 0 {
		return
	}
	byUUID := map[string]int{}
	for i, d := range snap.Devices {
		byUUID[d.UUID] = i
	}
	for _, ev := range a.pending {
		if i, ok := byUUID[ev.UUID]; ok {
			snap.Devices[i].Xid = append(snap.Devices[i].Xid, ev.XidEvent)
		}
	}
	a.pending = nil
}

// logHealth logs a collect error when it differs from the last one
// logged, and the recovery when collects succeed again. Callers hold a.mu.
func (a *Agent) logHealth(err error) {
	switch {
	case err == nil && a.logged != "":
		a.cfg.Log.Info("GPU collect recovered")
		a.logged = ""
	case err != nil && err.Error() != a.logged:
		a.cfg.Log.Warn("GPU collect failed", "err", err)
		a.logged = err.Error()
	}
}

// History returns the snapshots of the ring taken at or after since,
// oldest first.
func (a *Agent) History(since time.Time) gpu.History {
	a.mu.Lock()
	defer a.mu.Unlock()
	return gpu.History{Node: a.cfg.Node, Samples: a.ring.since(since, a.cfg.Clock.Now())}
}

// Run samples into the history ring every Interval and watches Xid
// events, until ctx ends; then it returns nil once its watcher stopped.
// Collect errors are counted and logged, never fatal.
func (a *Agent) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.watchXid(ctx)
	}()
	defer wg.Wait()
	for {
		_, _ = a.Snapshot(ctx) // counted and logged by Snapshot
		select {
		case <-ctx.Done():
			return nil
		case <-a.cfg.Clock.After(a.cfg.Interval):
		}
	}
}

// watchXid records Xid events until ctx ends, or until the source says
// no GPU here reports them.
func (a *Agent) watchXid(ctx context.Context) {
	for ctx.Err() == nil {
		evs, err := a.src.WaitXid(ctx, xidWait)
		switch {
		case err == nil:
			a.recordXid(evs)
			continue
		case ctx.Err() != nil:
			return
		case errors.Is(err, gpu.ErrNotOpen):
			// NVML is not open yet: the next collect retries it.
		case canary.IsTerminal(err):
			a.count(OpXid)
			a.cfg.Log.Warn("Xid events are not watched", "err", err)
			return
		default:
			a.count(OpXid)
			a.cfg.Log.Warn("watching Xid events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.cfg.Clock.After(a.cfg.Interval):
		}
	}
}

// recordXid counts evs and queues them for the next snapshot.
func (a *Agent) recordXid(evs []gpu.DeviceXid) {
	if len(evs) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ev := range evs {
		a.xids[xidKey{uuid: ev.UUID, index: ev.Index, code: ev.Code}]++
		a.cfg.Log.Warn("GPU Xid error", "uuid", ev.UUID, "gpu", ev.Index, "xid", ev.Code)
	}
	a.pending = append(a.pending, evs...)
	if over := len(a.pending) - maxPendingXid; over > 0 {
		a.pending = a.pending[over:]
	}
}
