package main

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// reconcileArgs are reconcile's required flags; nothing is dialled before
// the leader-election flags are checked.
func reconcileArgs(t *testing.T, extra ...string) []string {
	return append([]string{"reconcile", "--repo", filepath.Join(t.TempDir(), "repo.git"), "--dir", t.TempDir(),
		"--prometheus", "http://127.0.0.1:1", "--argocd-server", "127.0.0.1:1"}, extra...)
}

func TestReconcileLeaderElectFlagsAreChecked(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want []string
	}{
		"once": {[]string{"--once", "--leader-elect"},
			[]string{"--once cannot be used with --leader-elect: --once runs one reconcile and exits"}},
		"lease not longer than renew": {[]string{"--leader-elect", "--leader-elect-lease-duration", "10s"},
			[]string{"--leader-elect: lease duration 10s must be longer than the renew deadline 10s"}},
		"retry too long": {[]string{"--leader-elect", "--leader-elect-retry-period", "9s"},
			[]string{"--leader-elect: renew deadline 10s must be longer than 10.8s (the retry period 9s × 1.2 jitter)"}},
		"every problem at once": {[]string{"--leader-elect", "--leader-elect-lease-duration", "2500ms",
			"--leader-elect-renew-deadline", "0s", "--leader-elect-namespace", "Bad_NS", "--leader-elect-identity", ""},
			[]string{`namespace "Bad_NS"`, "identity: must not be empty", "renew deadline 0s: must be positive"}},
		"fractional lease": {[]string{"--leader-elect", "--leader-elect-lease-duration", "15500ms"},
			[]string{"lease duration 15.5s: must be a whole number of seconds"}},
		"settings without --leader-elect": {[]string{"--leader-elect-namespace", "ops", "--leader-elect-retry-period", "1s"},
			[]string{"--leader-elect-namespace needs --leader-elect", "--leader-elect-retry-period needs --leader-elect"}},
		"no cluster": {[]string{"--leader-elect", "--leader-elect-kubeconfig", "/nonexistent/kubeconfig"},
			[]string{"lease canarybot/canarybot: kubeconfig /nonexistent/kubeconfig:"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := run(t, reconcileArgs(t, tc.args...)...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
}

func TestLeaderOptionsDefaults(t *testing.T) {
	var o leaderOptions
	f := pflag.NewFlagSet("x", pflag.ContinueOnError)
	o.addFlags(f)
	if err := f.Parse([]string{"--leader-elect"}); err != nil {
		t.Fatal(err)
	}
	if err := o.check(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c := o.cfg
	if c.Namespace != "canarybot" || c.Name != "canarybot" || c.LeaseDuration.String() != "15s" ||
		c.RenewDeadline.String() != "10s" || c.RetryPeriod.String() != "2s" || c.Kubeconfig != "" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.Identity == "" || !strings.Contains(c.Identity, "-") {
		t.Fatalf("identity %q, want hostname-pid", c.Identity)
	}
}

// Without --leader-elect, run is fn itself.
func TestLeaderOptionsRunWithoutElection(t *testing.T) {
	var o leaderOptions
	o.addFlags(pflag.NewFlagSet("x", pflag.ContinueOnError))
	boom := errors.New("boom")
	err := o.run(context.Background(), slog.New(slog.DiscardHandler), func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("run = %v, want fn's error", err)
	}
}
