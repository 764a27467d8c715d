// Package leader runs work on one replica at a time: the holder of a
// coordination.k8s.io/v1 Lease. It is a thin adapter over client-go's
// tools/leaderelection with a resourcelock.LeaseLock.
//
// Run blocks until this replica holds the Lease, runs the work with a
// context that ends when leadership is lost, and releases the Lease once
// the work has returned, so that a clean shutdown hands over at once and a
// standby never starts while this replica still works. A replica that
// loses the Lease gets ErrLostLease and should exit, to be restarted as a
// standby.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// ErrLostLease means this replica held the Lease and could not renew it in
// time: another replica may be leading now. The process should exit
// non-zero so that it is restarted as a standby.
var ErrLostLease = errors.New("lost the lease")

// Config names the Lease and how it is held.
type Config struct {
	// Kubeconfig is the kubeconfig file to reach the cluster with; empty
	// means the in-cluster service account.
	Kubeconfig string
	// Namespace and Name name the Lease; the namespace must exist.
	Namespace, Name string
	// Identity is this replica's name in the Lease (holderIdentity); it
	// must differ between replicas.
	Identity string
	// LeaseDuration is how long a standby waits, after the last renewal it
	// saw, before it takes the Lease over. The Lease stores it in whole
	// seconds.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it
	// gives leadership up; shorter than LeaseDuration.
	RenewDeadline time.Duration
	// RetryPeriod is the wait between tries to acquire or renew.
	RetryPeriod time.Duration
	// Log receives "waiting for the lease", "acquired the lease" and "lost
	// the lease"; discarded when nil.
	Log *slog.Logger
}

// Validate returns every problem of the configuration, joined.
func (c Config) Validate() error {
	var errs []error
	for _, p := range validation.IsDNS1123Label(c.Namespace) {
		errs = append(errs, fmt.Errorf("namespace %q: %s", c.Namespace, p))
	}
	for _, p := range validation.IsDNS1123Subdomain(c.Name) {
		errs = append(errs, fmt.Errorf("lease name %q: %s", c.Name, p))
	}
	if c.Identity == "" {
		errs = append(errs, errors.New("identity: must not be empty"))
	}
	return errors.Join(append(errs, c.validateDurations()...)...)
}

// validateDurations checks the durations as client-go's elector requires:
// LeaseDuration > RenewDeadline > RetryPeriod × 1.2 > 0; and LeaseDuration
// a whole number of seconds, as the Lease stores it.
func (c Config) validateDurations() []error {
	var errs []error
	positive := true
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"lease duration", c.LeaseDuration}, {"renew deadline", c.RenewDeadline}, {"retry period", c.RetryPeriod}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be positive", d.name, d.v))
			positive = false
		}
	}
	if !positive {
		return errs
	}
	if c.LeaseDuration%time.Second != 0 {
		errs = append(errs, fmt.Errorf("lease duration %s: must be a whole number of seconds (the Lease stores seconds)", c.LeaseDuration))
	}
	if c.LeaseDuration <= c.RenewDeadline {
		errs = append(errs, fmt.Errorf("lease duration %s must be longer than the renew deadline %s", c.LeaseDuration, c.RenewDeadline))
	}
	if floor := time.Duration(leaderelection.JitterFactor * float64(c.RetryPeriod)); c.RenewDeadline <= floor {
		errs = append(errs, fmt.Errorf("renew deadline %s must be longer than %s (the retry period %s × %.1f jitter)",
			c.RenewDeadline, floor, c.RetryPeriod, leaderelection.JitterFactor))
	}
	return errs
}

// Run blocks until this replica holds the Lease, then runs lead with a
// context that is cancelled when ctx ends or leadership is lost. It
// releases the Lease only after lead has returned.
//
// It returns lead's error; an error wrapping ErrLostLease when leadership
// was lost while lead ran; or nil when ctx ended before this replica
// acquired the Lease.
func Run(ctx context.Context, cfg Config, lead func(ctx context.Context) error) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("lease %s/%s: %w", cfg.Namespace, cfg.Name, err)
	}
	lock, err := newLock(cfg)
	if err != nil {
		return fmt.Errorf("lease %s/%s: %w", cfg.Namespace, cfg.Name, err)
	}
	return run(ctx, cfg, lock, lead)
}

// newLock is the LeaseLock of cfg, with a client that times a request out
// well within the renew deadline.
func newLock(cfg Config) (*resourcelock.LeaseLock, error) {
	var rc *rest.Config
	var err error
	if cfg.Kubeconfig == "" {
		if rc, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("in-cluster config (give a kubeconfig outside a cluster): %w", err)
		}
	} else if rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", cfg.Kubeconfig, err)
	}
	rc = rest.AddUserAgent(rest.CopyConfig(rc), "canarybot-leader-election")
	rc.Timeout = cfg.RenewDeadline / 2
	client, err := coordinationv1.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("coordination client: %w", err)
	}
	return &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Name},
		Client:     client,
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
	}, nil
}

// run is Run over any lock.
func run(ctx context.Context, cfg Config, lock resourcelock.Interface, lead func(ctx context.Context) error) error {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity)
	t := &term{ctx: ctx, lead: lead, log: log, done: make(chan outcome, 1)}
	// The elector outlives ctx: when ctx ends while this replica leads,
	// the Lease is released only once lead has returned.
	elCtx, stopElector := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElector()
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          lock,
		LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            cfg.Namespace + "/" + cfg.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: t.started,
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if id != "" && id != cfg.Identity {
					log.Info("the lease is held by another replica", "holder", id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("lease %s/%s: %w", cfg.Namespace, cfg.Name, err)
	}
	elDone := make(chan struct{})
	log.Info("waiting for the lease")
	go func() {
		defer close(elDone)
		le.Run(elCtx)
	}()
	var o outcome
	select {
	case <-ctx.Done():
		if !t.stop() {
			stopElector()
			<-elDone
			return nil
		}
		o = <-t.done // lead's context ended with ctx
	case o = <-t.done:
	}
	stopElector() // releases the Lease, now that lead has returned
	<-elDone
	if !o.lost {
		return o.err
	}
	if o.err != nil && !errors.Is(o.err, context.Canceled) {
		return fmt.Errorf("lease %s/%s as %s: %w; then: %w", cfg.Namespace, cfg.Name, cfg.Identity, ErrLostLease, o.err)
	}
	return fmt.Errorf("lease %s/%s as %s: %w", cfg.Namespace, cfg.Name, cfg.Identity, ErrLostLease)
}

// term is one replica's term as leader: at most one call of lead.
type term struct {
	ctx  context.Context
	lead func(context.Context) error
	log  *slog.Logger
	done chan outcome // lead's outcome, when it ran

	mu       sync.Mutex
	leading  bool // lead was started
	stopping bool // ctx ended: never start lead
}

// outcome is how lead ended: its error, and whether leadership was lost
// while it ran.
type outcome struct {
	err  error
	lost bool
}

// stop marks the term over before it starts; it reports whether lead had
// already started (and will report its outcome).
func (t *term) stop() (leading bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopping = true
	return t.leading
}

// started is the elector's OnStartedLeading: it runs lead with a context
// that ends with t.ctx or with leadership (lctx).
func (t *term) started(lctx context.Context) {
	t.mu.Lock()
	if t.stopping {
		t.mu.Unlock()
		return
	}
	t.leading = true
	t.mu.Unlock()
	t.log.Info("acquired the lease")
	runCtx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	stopWatch := context.AfterFunc(lctx, func() {
		t.log.Warn("lost the lease; stopping")
		cancel()
	})
	err := t.lead(runCtx)
	t.done <- outcome{err: err, lost: !stopWatch()}
}
