//go:build cgo

package agent

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gpu"
	"github.com/canarybot/canarybot/pkg/gpu/gputest"
)

// testClock is a clock the test moves; its After never fires.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) After(time.Duration) <-chan time.Time { return nil }

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestAgent runs an Agent over a real gpu.Collector over srv, with pod
// mapping over empty temp directories unless opts override it. The
// collector is closed when t ends.
func newTestAgent(t *testing.T, srv *server.Server, clk canary.Clock, cfg Config, opts ...gpu.Option) (*Agent, *gpu.Collector) {
	t.Helper()
	base := []gpu.Option{gpu.WithClock(clk), gpu.WithProcRoot(t.TempDir()), gpu.WithPodsLogDir(filepath.Join(t.TempDir(), "pods"))}
	col := gpu.NewCollector(srv, append(base, opts...)...)
	t.Cleanup(func() {
		if err := col.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	cfg.Clock = clk
	a, err := New(col, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a, col
}

func TestNewConfig(t *testing.T) {
	src := gpu.NewCollector(gputest.HealthyServer())
	for _, tc := range []struct {
		name    string
		src     Source
		cfg     Config
		wantErr string
		want    Config
	}{
		{name: "defaults", src: src, want: Config{Interval: DefaultInterval, History: DefaultHistory, CacheTTL: DefaultCacheTTL}},
		{name: "set", src: src, cfg: Config{Node: "n1", Interval: time.Second, History: time.Minute, CacheTTL: time.Millisecond},
			want: Config{Node: "n1", Interval: time.Second, History: time.Minute, CacheTTL: time.Millisecond}},
		{name: "no source", wantErr: "gpu agent: no source"},
		{name: "negative", src: src, cfg: Config{Interval: -time.Second}, wantErr: "gpu agent: interval -1s is negative"},
		{name: "negative TTL", src: src, cfg: Config{CacheTTL: -1}, wantErr: "gpu agent: cache TTL -1ns is negative"},
		{name: "short history", src: src, cfg: Config{Interval: time.Minute, History: 30 * time.Second},
			wantErr: "gpu agent: history 30s is shorter than the interval 1m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(tc.src, tc.cfg)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("New = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := a.cfg
			if got.Clock == nil || got.Log == nil {
				t.Errorf("clock %v, log %v: want defaults", got.Clock, got.Log)
			}
			got.Clock, got.Log = nil, nil
			if got != tc.want {
				t.Errorf("config = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSnapshotCachesAndRecordsHistory(t *testing.T) {
	clk := newTestClock()
	srv := gputest.HealthyServer()
	a, _ := newTestAgent(t, srv, clk, Config{Node: "gpu-1", CacheTTL: 2 * time.Second})
	ctx := context.Background()
	first, err := a.Snapshot(ctx)
	if err != nil || len(first.Devices) != 8 || first.Node != "gpu-1" || !first.Time.Equal(clk.Now()) {
		t.Fatalf("Snapshot = %d devices node %q at %v, %v", len(first.Devices), first.Node, first.Time, err)
	}
	clk.advance(time.Second)
	if _, err := a.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.DeviceGetCountCalls()); n != 1 {
		t.Errorf("two snapshots within the cache TTL read NVML %d times, want 1", n)
	}
	clk.advance(time.Second)
	second, err := a.Snapshot(ctx)
	if err != nil || !second.Time.Equal(first.Time.Add(2*time.Second)) {
		t.Fatalf("Snapshot after the TTL = %v, %v; want a new one", second.Time, err)
	}
	if n := len(srv.DeviceGetCountCalls()); n != 2 || len(srv.InitCalls()) != 1 {
		t.Errorf("%d reads and %d inits, want 2 and 1", n, len(srv.InitCalls()))
	}
	h := a.History(time.Time{})
	if h.Node != "gpu-1" || len(h.Samples) != 2 || !h.Samples[0].Time.Equal(first.Time) || !h.Samples[1].Time.Equal(second.Time) {
		t.Errorf("history = node %q, %d samples", h.Node, len(h.Samples))
	}
}

func TestHistoryEvictsByAgeAndFiltersSince(t *testing.T) {
	clk := newTestClock()
	t0 := clk.Now()
	a, _ := newTestAgent(t, gputest.HealthyServer(), clk, Config{Interval: 10 * time.Second, History: time.Minute})
	for _, at := range []time.Duration{0, 30 * time.Second, 70 * time.Second} {
		clk.advance(at - clk.Now().Sub(t0))
		if _, err := a.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		now   time.Duration // clock offset from t0 when asked
		since time.Time
		want  []time.Duration
	}{
		{"oldest evicted", 70 * time.Second, time.Time{}, []time.Duration{30 * time.Second, 70 * time.Second}},
		{"since is inclusive", 70 * time.Second, t0.Add(30 * time.Second), []time.Duration{30 * time.Second, 70 * time.Second}},
		{"since between", 70 * time.Second, t0.Add(31 * time.Second), []time.Duration{70 * time.Second}},
		{"since in the future", 70 * time.Second, t0.Add(time.Hour), nil},
		{"evicted on read", 91 * time.Second, time.Time{}, []time.Duration{70 * time.Second}},
		{"all aged out", 200 * time.Second, time.Time{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk.advance(tc.now - clk.Now().Sub(t0))
			h := a.History(tc.since)
			if h.Samples == nil {
				t.Fatal("samples are nil, want an empty list")
			}
			var got []time.Duration
			for _, s := range h.Samples {
				got = append(got, s.Time.Sub(t0))
			}
			if len(got) != len(tc.want) || (len(got) > 0 && !equalDurations(got, tc.want)) {
				t.Errorf("samples at %v, want %v", got, tc.want)
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestRingIsBounded(t *testing.T) {
	r := newRing(time.Hour)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range maxRingSamples + 10 {
		r.add(gpu.Snapshot{Time: now.Add(time.Duration(i) * time.Millisecond)}, now)
	}
	got := r.since(time.Time{}, now)
	if len(got) != maxRingSamples || !got[0].Time.Equal(now.Add(10*time.Millisecond)) {
		t.Errorf("ring holds %d snapshots from %v, want the newest %d", len(got), got[0].Time, maxRingSamples)
	}
}

func TestSnapshotWithoutNVML(t *testing.T) {
	clk := newTestClock()
	srv := gputest.HealthyServer()
	srv.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	a, _ := newTestAgent(t, srv, clk, Config{})
	for range 2 {
		snap, err := a.Snapshot(context.Background())
		if !errors.Is(err, gpu.ErrNVMLUnavailable) || err.Error() != "NVML not available on this host: ERROR_LIBRARY_NOT_FOUND" {
			t.Fatalf("Snapshot = %v, want ErrNVMLUnavailable", err)
		}
		if snap.Devices != nil {
			t.Errorf("devices %+v without NVML", snap.Devices)
		}
		clk.advance(DefaultCacheTTL)
	}
	up, errs, _ := a.counters()
	if up || errs[OpOpen] != 2 || errs[OpSnapshot] != 0 {
		t.Errorf("up %v, errors %v; want down with 2 open errors", up, errs)
	}
	if h := a.History(time.Time{}); len(h.Samples) != 0 {
		t.Errorf("failed collects joined the history: %+v", h.Samples)
	}

	// The driver loads: the next collect opens NVML and is up.
	srv.InitFunc = func() nvml.Return { return nvml.SUCCESS }
	if snap, err := a.Snapshot(context.Background()); err != nil || len(snap.Devices) != 8 {
		t.Fatalf("Snapshot after the driver loaded = %d devices, %v", len(snap.Devices), err)
	}
	if up, _, _ := a.counters(); !up {
		t.Error("want up after NVML opened")
	}
}

func TestSnapshotPartialAndWholeFailures(t *testing.T) {
	clk := newTestClock()
	srv := gputest.HealthyServer()
	gputest.Device(srv, 6).GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
	a, _ := newTestAgent(t, srv, clk, Config{})
	snap, err := a.Snapshot(context.Background())
	if !errors.Is(err, nvml.ERROR_GPU_IS_LOST) || len(snap.Devices) != 7 {
		t.Fatalf("Snapshot = %d devices, %v; want 7 and the lost GPU", len(snap.Devices), err)
	}
	if up, errs, _ := a.counters(); !up || errs[OpSnapshot] != 1 {
		t.Errorf("up %v errors %v, want up with one snapshot error", up, errs)
	}

	srv.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	clk.advance(DefaultCacheTTL)
	if snap, err := a.Snapshot(context.Background()); err == nil || snap.Devices != nil {
		t.Fatalf("Snapshot = %+v, %v; want no devices and the error", snap, err)
	}
	if up, errs, _ := a.counters(); up || errs[OpSnapshot] != 2 {
		t.Errorf("up %v errors %v, want down with two snapshot errors", up, errs)
	}
	if n := len(a.History(time.Time{}).Samples); n != 1 {
		t.Errorf("history has %d samples, want only the partial one", n)
	}
}

// TestRunWatchesXid runs the agent for real: its watcher registers for
// Xid events, counts them, and the next snapshot carries them.
func TestRunWatchesXid(t *testing.T) {
	srv := gputest.HealthyServer()
	set := gputest.WithXidQueue(srv)
	col := gpu.NewCollector(srv, gpu.WithProcRoot(""))
	t.Cleanup(func() { _ = col.Close() })
	a, err := New(col, Config{Interval: 5 * time.Millisecond, History: time.Hour, CacheTTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	waitFor(t, "the event set", func() bool { return set() != nil })
	set().Push(gputest.Xid(srv, 3, 79), gputest.Xid(srv, 3, 79), gputest.Xid(srv, 5, 48))
	waitFor(t, "the Xid counts", func() bool {
		_, _, xids := a.counters()
		return len(xids) == 2
	})
	// Some snapshot after the events carries them.
	var seen map[string][]uint64
	waitFor(t, "a snapshot with the events", func() bool {
		seen = map[string][]uint64{}
		for _, s := range a.History(time.Time{}).Samples {
			for _, d := range s.Devices {
				for _, x := range d.Xid {
					seen[d.UUID] = append(seen[d.UUID], x.Code)
				}
			}
		}
		return len(seen) == 2
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil on cancel", err)
	}
	_, _, xids := a.counters()
	u3, u5 := gputest.Device(srv, 3).UUID, gputest.Device(srv, 5).UUID
	if xids[xidKey{u3, 3, 79}] != 2 || xids[xidKey{u5, 5, 48}] != 1 {
		t.Errorf("Xid counts = %v", xids)
	}
	if len(seen[u3]) != 2 || seen[u3][0] != 79 || len(seen[u5]) != 1 || seen[u5][0] != 48 {
		t.Errorf("Xid events in snapshots = %v, want each once", seen)
	}
}

func TestRunStopsWatchingWhenXidUnsupported(t *testing.T) {
	srv := gputest.HealthyServer()
	srv.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) { return nil, nvml.ERROR_NOT_SUPPORTED }
	col := gpu.NewCollector(srv, gpu.WithProcRoot(""))
	t.Cleanup(func() { _ = col.Close() })
	a, err := New(col, Config{Interval: 5 * time.Millisecond, History: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { a.watchXid(ctx); close(done) }()
	if _, err := a.Snapshot(ctx); err != nil { // opens NVML for the watcher
		t.Fatal(err)
	}
	<-done // returns on its own: the error is terminal
	if _, errs, _ := a.counters(); errs[OpXid] != 1 || len(srv.EventSetCreateCalls()) != 1 {
		t.Errorf("xid errors %d after %d tries, want 1 and 1", errs[OpXid], len(srv.EventSetCreateCalls()))
	}
}

// waitFor polls cond until it holds, failing t after ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
