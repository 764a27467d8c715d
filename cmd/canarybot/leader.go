package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/canarybot/canarybot/pkg/leader"
)

// leaderOptions are the --leader-elect flags of a long-running command
// (reconcile, serve): with --leader-elect, only the replica holding a
// coordination.k8s.io/v1 Lease does the work; the others wait to take over.
//
// A command registers them with addFlags, validates them with check
// before doing anything, and runs its long-running part through run.
type leaderOptions struct {
	enabled bool
	cfg     leader.Config
	flags   *pflag.FlagSet
}

// leaderFlagPrefix starts the name of every flag but --leader-elect itself.
const leaderFlagPrefix = "leader-elect-"

// errLeaderElectOnce refuses reconcile's --once with --leader-elect.
var errLeaderElectOnce = errors.New("--once cannot be used with --leader-elect: --once runs one reconcile and exits, " +
	"so there is no rollout to hand over; drop --leader-elect (two --once runs are safe: the push never forces)")

// addFlags registers --leader-elect and the --leader-elect-* flags on f.
func (o *leaderOptions) addFlags(f *pflag.FlagSet) {
	o.flags = f
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "canarybot"
	}
	f.BoolVar(&o.enabled, "leader-elect", false,
		"run as one of several replicas: only the holder of a Kubernetes Lease works, the others wait to take over")
	f.StringVar(&o.cfg.Kubeconfig, leaderFlagPrefix+"kubeconfig", "",
		"kubeconfig of the cluster holding the Lease (default: the in-cluster service account)")
	f.StringVar(&o.cfg.Namespace, leaderFlagPrefix+"namespace", "canarybot", "namespace of the Lease (it must exist)")
	f.StringVar(&o.cfg.Name, leaderFlagPrefix+"lease", "canarybot", "name of the Lease; replicas that share it share the work")
	f.StringVar(&o.cfg.Identity, leaderFlagPrefix+"identity", fmt.Sprintf("%s-%d", host, os.Getpid()),
		"this replica's holderIdentity in the Lease, unique per replica (default: hostname-pid)")
	f.DurationVar(&o.cfg.LeaseDuration, leaderFlagPrefix+"lease-duration", 15*time.Second,
		"how long a standby waits after the leader's last renewal before taking over (whole seconds)")
	f.DurationVar(&o.cfg.RenewDeadline, leaderFlagPrefix+"renew-deadline", 10*time.Second,
		"how long the leader tries to renew before giving up and exiting; shorter than the lease duration")
	f.DurationVar(&o.cfg.RetryPeriod, leaderFlagPrefix+"retry-period", 2*time.Second,
		"wait between tries to acquire or renew the Lease")
}

// check validates the flags: every --leader-elect-* flag needs
// --leader-elect, and the Lease settings must be coherent.
func (o *leaderOptions) check() error {
	var errs []error
	if !o.enabled {
		o.flags.Visit(func(fl *pflag.Flag) {
			if strings.HasPrefix(fl.Name, leaderFlagPrefix) {
				errs = append(errs, fmt.Errorf("--%s needs --leader-elect", fl.Name))
			}
		})
		return errors.Join(errs...)
	}
	if err := o.cfg.Validate(); err != nil {
		return fmt.Errorf("--leader-elect: %w", err)
	}
	return nil
}

// run runs fn: at once without --leader-elect; with it, once this replica
// holds the Lease, with a context that ends if the Lease is lost. The
// Lease is released after fn returns, so SIGTERM hands over at once.
//
// It returns fn's error; one wrapping leader.ErrLostLease if the Lease was
// lost (the process should exit non-zero, to be restarted as a standby);
// or nil if ctx ended while waiting for the Lease.
func (o *leaderOptions) run(ctx context.Context, log *slog.Logger, fn func(ctx context.Context) error) error {
	if !o.enabled {
		return fn(ctx)
	}
	// client-go's elector logs through klog: send that to our logger.
	klog.SetSlogLogger(log.With("component", "leaderelection"))
	cfg := o.cfg
	cfg.Log = log
	return leader.Run(ctx, cfg, fn)
}
