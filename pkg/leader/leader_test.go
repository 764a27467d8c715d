package leader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

func TestValidateReportsEveryProblem(t *testing.T) {
	ok := testConfig("a")
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, tc := range map[string]struct {
		edit func(*Config)
		want []string
	}{
		"names": {func(c *Config) { c.Namespace, c.Name, c.Identity = "", "Bad_Name", "" },
			[]string{`namespace ""`, `lease name "Bad_Name"`, "identity: must not be empty"}},
		"non-positive": {func(c *Config) { c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = 0, -time.Second, 0 },
			[]string{"lease duration 0s: must be positive", "renew deadline -1s: must be positive", "retry period 0s: must be positive"}},
		"order": {func(c *Config) {
			c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = 2*time.Second, 3*time.Second, 3*time.Second
		},
			[]string{"lease duration 2s must be longer than the renew deadline 3s",
				"renew deadline 3s must be longer than 3.6s (the retry period 3s × 1.2 jitter)"}},
		"fractional lease": {func(c *Config) { c.LeaseDuration = 1500 * time.Millisecond },
			[]string{"lease duration 1.5s: must be a whole number of seconds"}},
	} {
		t.Run(name, func(t *testing.T) {
			c := testConfig("a")
			tc.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.want) {
				t.Errorf("%d problems reported, want %d: %q", n, len(tc.want), err)
			}
		})
	}
}

// A replica leads once it holds the Lease, and releases it only after lead
// has returned; lead's error is Run's.
func TestRunReleasesTheLeaseAfterLeadReturns(t *testing.T) {
	s := &store{}
	ctx, cancel := context.WithCancel(context.Background())
	holderWhenStopping := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, testConfig("a"), s.lock("a"), func(ctx context.Context) error {
			cancel() // as a SIGTERM would
			<-ctx.Done()
			time.Sleep(200 * time.Millisecond) // finishing the last commit
			holderWhenStopping <- s.holder()
			return ctx.Err()
		})
	}()
	err := waitErr(t, errc, 5*time.Second)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrLostLease) {
		t.Fatalf("Run = %v, want lead's context.Canceled", err)
	}
	if h := <-holderWhenStopping; h != "a" {
		t.Fatalf("holder while lead was stopping: %q, want a: the Lease was released too early", h)
	}
	if h := s.holder(); h != "" {
		t.Fatalf("holder after Run: %q, want the Lease released", h)
	}
}

// Of two replicas one leads; when it stops, the other takes the released
// Lease over without waiting for it to expire.
func TestStandbyTakesOverAReleasedLease(t *testing.T) {
	s := &store{}
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	ledA, ledB := make(chan struct{}), make(chan time.Time, 1)
	errA, errB := make(chan error, 1), make(chan error, 1)
	go func() {
		errA <- run(ctxA, testConfig("a"), s.lock("a"), func(ctx context.Context) error {
			close(ledA)
			<-ctx.Done()
			return nil
		})
	}()
	waitClosed(t, ledA, 5*time.Second)
	go func() {
		errB <- run(ctxB, testConfig("b"), s.lock("b"), func(ctx context.Context) error {
			ledB <- time.Now()
			<-ctx.Done()
			return nil
		})
	}()
	time.Sleep(1500 * time.Millisecond) // longer than the lease: a keeps renewing it
	select {
	case <-ledB:
		t.Fatal("b leads while a holds the Lease")
	default:
	}
	stopA()
	stopped := time.Now()
	if err := waitErr(t, errA, 5*time.Second); err != nil {
		t.Fatalf("a: Run = %v, want nil", err)
	}
	select {
	case at := <-ledB:
		t.Logf("b took over %s after a stopped", at.Sub(stopped).Round(time.Millisecond))
		if at.Sub(stopped) > 900*time.Millisecond {
			t.Errorf("b took over after %s: the released Lease should go at the next retry", at.Sub(stopped))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b never took over")
	}
	stopB()
	if err := waitErr(t, errB, 5*time.Second); err != nil {
		t.Fatalf("b: Run = %v", err)
	}
}

// A leader that cannot renew stops lead and reports ErrLostLease.
func TestLostLeaseCancelsLead(t *testing.T) {
	s := &store{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(context.Background(), testConfig("a"), s.lock("a"), func(ctx context.Context) error {
			s.setDown(true)
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	err := waitErr(t, errc, 5*time.Second)
	if !errors.Is(err, ErrLostLease) || errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want ErrLostLease alone", err)
	}
	if want := "lease canarybot/canarybot as a: lost the lease"; err.Error() != want {
		t.Fatalf("Run = %q, want %q", err, want)
	}
}

// lead's own error comes back, and the Lease is released.
func TestLeadErrorIsReturned(t *testing.T) {
	s := &store{}
	boom := errors.New("boom")
	err := run(context.Background(), testConfig("a"), s.lock("a"), func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want boom", err)
	}
	if h := s.holder(); h != "" {
		t.Fatalf("holder %q after lead returned, want the Lease released", h)
	}
}

// A standby whose ctx ends returns nil and never runs lead.
func TestStandbyStopsWhileWaiting(t *testing.T) {
	s := &store{rec: &resourcelock.LeaderElectionRecord{HolderIdentity: "other", LeaseDurationSeconds: 3600,
		AcquireTime: metav1.Now(), RenewTime: metav1.Now()}, version: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	err := run(ctx, testConfig("a"), s.lock("a"), func(context.Context) error {
		t.Error("lead ran while another replica holds the Lease")
		return nil
	})
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if h := s.holder(); h != "other" {
		t.Fatalf("holder %q, want other's Lease untouched", h)
	}
}

func TestRunRefusesABadConfig(t *testing.T) {
	c := testConfig("a")
	c.RetryPeriod = 0
	err := Run(context.Background(), c, func(context.Context) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "lease canarybot/canarybot: retry period 0s: must be positive") {
		t.Fatalf("Run = %v", err)
	}
}

func testConfig(id string) Config {
	return Config{Namespace: "canarybot", Name: "canarybot", Identity: id,
		LeaseDuration: time.Second, RenewDeadline: 500 * time.Millisecond, RetryPeriod: 100 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(testWriter{}, nil))}
}

type testWriter struct{}

func (testWriter) Write(p []byte) (int, error) { return len(p), nil }

func waitErr(t *testing.T, c <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(d):
		t.Fatalf("Run did not return within %s", d)
		return nil
	}
}

func waitClosed(t *testing.T, c <-chan struct{}, d time.Duration) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(d):
		t.Fatalf("nothing within %s", d)
	}
}

// store is an in-memory Lease with the API server's optimistic
// concurrency: an update based on an old version is a conflict.
type store struct {
	mu      sync.Mutex
	rec     *resourcelock.LeaderElectionRecord
	version int
	down    bool
}

func (s *store) lock(id string) *fakeLock { return &fakeLock{s: s, id: id} }

func (s *store) holder() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec == nil {
		return ""
	}
	return s.rec.HolderIdentity
}

func (s *store) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

var leases = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

// fakeLock is one replica's view of store, as resourcelock.LeaseLock is.
type fakeLock struct {
	s    *store
	id   string
	seen int
}

func (l *fakeLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.down {
		return nil, nil, errors.New("connection refused")
	}
	if l.s.rec == nil {
		return nil, nil, apierrors.NewNotFound(leases, "canarybot")
	}
	rec := *l.s.rec
	raw, err := json.Marshal(rec)
	l.seen = l.s.version
	return &rec, raw, err
}

func (l *fakeLock) Create(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.down {
		return errors.New("connection refused")
	}
	if l.s.rec != nil {
		return apierrors.NewAlreadyExists(leases, "canarybot")
	}
	l.s.rec, l.s.version = &r, l.s.version+1
	l.seen = l.s.version
	return nil
}

func (l *fakeLock) Update(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	switch {
	case l.s.down:
		return errors.New("connection refused")
	case l.s.rec == nil:
		return apierrors.NewNotFound(leases, "canarybot")
	case l.seen != l.s.version:
		return apierrors.NewConflict(leases, "canarybot", fmt.Errorf("version %d, not %d", l.s.version, l.seen))
	}
	l.s.rec, l.s.version = &r, l.s.version+1
	l.seen = l.s.version
	return nil
}

func (l *fakeLock) RecordEvent(string) {}
func (l *fakeLock) Identity() string   { return l.id }
func (l *fakeLock) Describe() string   { return "canarybot/canarybot" }
