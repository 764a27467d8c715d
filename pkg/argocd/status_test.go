package argocd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	t0   = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	want = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	old  = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

func healthy(rev string) AppStatus {
	return AppStatus{SyncStatus: SyncSynced, SyncRevision: rev, OperationPhase: PhaseSucceeded,
		OperationRevision: rev, FinishedAt: t0, Health: HealthHealthy, ReconciledAt: t0.Add(time.Second)}
}

func TestReady(t *testing.T) {
	cases := []struct {
		name   string
		mut    func(*AppStatus)
		ready  bool
		reason string
	}{
		{"applied, healthy and reassessed", nil, true, "synced"},
		{"health reassessed at the same instant", func(s *AppStatus) { s.ReconciledAt = t0 }, true, "synced"},
		{"stale revision trap: sync.revision names the commit before it is applied", func(s *AppStatus) {
			s.OperationRevision = old
		}, false, "last sync applied aaaaaaaaaaaa"},
		{"operation still running", func(s *AppStatus) { s.OperationPhase = PhaseRunning }, false, "Running"},
		{"no operation yet", func(s *AppStatus) { s.OperationPhase, s.OperationRevision = "", "" }, false, "applied nothing"},
		{"progressing health", func(s *AppStatus) { s.Health = HealthProgressing }, false, "health is Progressing"},
		{"health assessed before the sync finished", func(s *AppStatus) { s.ReconciledAt = t0.Add(-time.Second) }, false, "not reassessed"},
		{"no finish time", func(s *AppStatus) { s.FinishedAt = time.Time{} }, false, "not reassessed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := healthy(want)
			if tc.mut != nil {
				tc.mut(&s)
			}
			ok, reason := Ready(s, want)
			if ok != tc.ready || !strings.Contains(reason, tc.reason) {
				t.Errorf("Ready = %t %q, want %t containing %q", ok, reason, tc.ready, tc.reason)
			}
		})
	}
}

func TestFailed(t *testing.T) {
	cases := []struct {
		name   string
		mut    func(*AppStatus)
		failed bool
	}{
		{"healthy", nil, false},
		{"sync failed", func(s *AppStatus) {
			s.OperationPhase, s.OperationMessage = PhaseFailed, "one or more objects failed to apply"
		}, true},
		{"sync errored", func(s *AppStatus) { s.OperationPhase = PhaseError }, true},
		{"degraded after sync", func(s *AppStatus) { s.Health = HealthDegraded }, true},
		{"missing after sync", func(s *AppStatus) { s.Health = HealthMissing }, true},
		{"degraded before the sync was reassessed", func(s *AppStatus) { s.Health, s.ReconciledAt = HealthDegraded, t0.Add(-time.Second) }, false},
		{"an older revision failed", func(s *AppStatus) { s.OperationRevision, s.OperationPhase = old, PhaseFailed }, false},
		// Seen on the real Argo CD (make e2e): an automated sync whose apply
		// fails stays Running while it retries with backoff.
		{"sync retrying after a failed apply", func(s *AppStatus) {
			s.OperationPhase, s.OperationRetries = PhaseRunning, 4
			s.OperationMessage = "one or more objects failed to apply … Retrying attempt #4"
		}, true},
		{"sync running, first attempt", func(s *AppStatus) { s.OperationPhase = PhaseRunning }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := healthy(want)
			if tc.mut != nil {
				tc.mut(&s)
			}
			if got, why := Failed(s, want); got != tc.failed {
				t.Errorf("Failed = %t (%s), want %t", got, why, tc.failed)
			}
		})
	}
}

// fakeSource is a StatusSource with Fn fields.
type fakeSource struct {
	StatusFn  func(ctx context.Context, app string) (AppStatus, error)
	RefreshFn func(ctx context.Context, app string) error
}

func (f *fakeSource) Status(ctx context.Context, app string) (AppStatus, error) {
	return f.StatusFn(ctx, app)
}
func (f *fakeSource) Refresh(ctx context.Context, app string) error { return f.RefreshFn(ctx, app) }

func TestWaiterObserve(t *testing.T) {
	later := "cccccccccccccccccccccccccccccccccccccccc"
	status := healthy(later)
	src := &fakeSource{StatusFn: func(context.Context, string) (AppStatus, error) { return status, nil }}
	contains := map[string]bool{later + ">" + want: true}
	w := &Waiter{Source: src, Contains: func(_ context.Context, rev, anc string) (bool, error) {
		return contains[rev+">"+anc], nil
	}}
	obs, err := w.Observe(context.Background(), "qwen", want)
	if err != nil || !obs.Ready || obs.Revision != later || !obs.SyncedAt.Equal(t0) {
		t.Fatalf("a synced descendant should count, synced when its operation finished: %+v %v", obs, err)
	}
	obs, err = w.Observe(context.Background(), "qwen", old)
	if err != nil || obs.Ready || !obs.SyncedAt.IsZero() {
		t.Fatalf("a revision that does not contain the target must not count: %+v %v", obs, err)
	}
	status.OperationPhase = PhaseFailed
	obs, _ = w.Observe(context.Background(), "qwen", want)
	if !obs.Failed || obs.Ready {
		t.Errorf("failed sync of a descendant: %+v", obs)
	}
	boom := errors.New("connection refused")
	src.StatusFn = func(context.Context, string) (AppStatus, error) { return AppStatus{}, boom }
	if _, err := w.Observe(context.Background(), "qwen", want); !errors.Is(err, boom) {
		t.Errorf("err = %v, want wrapped %v", err, boom)
	}
}
