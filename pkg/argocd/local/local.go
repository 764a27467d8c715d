// Package local is a stand-in for Argo CD, for the demo and for tests that
// run without a cluster. Like Argo CD with automated sync, it watches a
// branch, builds each Application's kustomize path at the new head, and
// "applies" the result when it differs from what was applied last. It
// reports status through argocd.StatusSource, the port the real apiclient
// adapter implements, so the engine cannot tell them apart.
package local

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/argocd"
	"github.com/canarybot/canarybot/pkg/canary"
)

// App is one Application: a name and the repo path it deploys.
type App struct {
	Name string
	Path string
}

// Controller syncs Apps from a branch. Its Fn fields are its edges.
type Controller struct {
	// Checkout returns the branch head on disk, e.g. (*gitops.Repo).Checkout.
	Checkout func(ctx context.Context) (canary.Tree, error)
	// Build renders an app path, e.g. (*kustomize.Builder).Build.
	Build func(ctx context.Context, fsys fs.FS, path string) ([]byte, error)
	// Apply makes the rendered manifests live; an error fails the sync.
	Apply func(ctx context.Context, app string, manifests []byte) error
	Apps  []App
	Clock canary.Clock
	Log   *slog.Logger
	// Interval is how often the branch is polled without a refresh.
	Interval time.Duration
	// OnChange, when set, is called after an App's status moved to a new
	// revision or operation, as Argo CD notifications would announce it.
	OnChange func(app string, s argocd.AppStatus)

	mu      sync.Mutex
	status  map[string]argocd.AppStatus
	applied map[string][]byte
	refresh chan struct{}
	once    sync.Once
}

var _ argocd.StatusSource = (*Controller)(nil)

func (c *Controller) lazyInit() {
	c.once.Do(func() {
		c.status = map[string]argocd.AppStatus{}
		c.applied = map[string][]byte{}
		c.refresh = make(chan struct{}, 1)
	})
}

// Run reconciles every Interval, or at once after a Refresh, until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	c.lazyInit()
	for {
		if err := c.Reconcile(ctx); err != nil && ctx.Err() == nil {
			c.Log.Warn("local sync failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.refresh:
		case <-c.Clock.After(c.Interval):
		}
	}
}

// Reconcile runs one pass over every App at the branch head.
func (c *Controller) Reconcile(ctx context.Context) error {
	c.lazyInit()
	t, err := c.Checkout(ctx)
	if err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	for _, app := range c.Apps {
		c.reconcileApp(ctx, t, app)
	}
	return nil
}

func (c *Controller) reconcileApp(ctx context.Context, t canary.Tree, app App) {
	c.mu.Lock()
	s := c.status[app.Name]
	last := c.applied[app.Name]
	c.mu.Unlock()
	s.App, s.SyncRevision = app.Name, t.Head
	out, err := c.Build(ctx, t.FS, app.Path)
	switch {
	case err != nil:
		s = c.operation(s, t.Head, argocd.PhaseFailed, fmt.Sprintf("build %s: %s", app.Path, err))
		s.SyncStatus = argocd.SyncOutOfSync
	case last != nil && bytes.Equal(out, last):
		// Nothing to apply: Synced at the new head, no new operation, as
		// Argo CD's automated sync does.
		s.SyncStatus = argocd.SyncSynced
	default:
		if err := c.Apply(ctx, app.Name, out); err != nil {
			s = c.operation(s, t.Head, argocd.PhaseFailed, fmt.Sprintf("apply: %s", err))
			s.SyncStatus = argocd.SyncOutOfSync
			break
		}
		s = c.operation(s, t.Head, argocd.PhaseSucceeded, "successfully synced (all tasks run)")
		s.SyncStatus = argocd.SyncSynced
		c.mu.Lock()
		c.applied[app.Name] = out
		c.mu.Unlock()
		c.Log.Info("synced", "app", app.Name, "commit", short(t.Head))
	}
	if s.OperationPhase == argocd.PhaseSucceeded {
		s.Health, s.HealthMessage = argocd.HealthHealthy, ""
	} else {
		s.Health, s.HealthMessage = argocd.HealthDegraded, s.OperationMessage
	}
	s.ReconciledAt = c.Clock.Now()
	c.mu.Lock()
	prev := c.status[app.Name]
	c.status[app.Name] = s
	c.mu.Unlock()
	changed := prev.SyncRevision != s.SyncRevision || prev.OperationRevision != s.OperationRevision ||
		prev.OperationPhase != s.OperationPhase
	if changed && c.OnChange != nil {
		c.OnChange(app.Name, s)
	}
}

func (c *Controller) operation(s argocd.AppStatus, rev, phase, msg string) argocd.AppStatus {
	s.OperationRevision, s.OperationPhase, s.OperationMessage = rev, phase, msg
	s.FinishedAt = c.Clock.Now()
	return s
}

// Status reports an App's last known status.
func (c *Controller) Status(_ context.Context, app string) (argocd.AppStatus, error) {
	c.lazyInit()
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.status[app]
	if !ok {
		for _, a := range c.Apps {
			if a.Name == app {
				return argocd.AppStatus{App: app, Health: argocd.HealthMissing, SyncStatus: "Unknown"}, nil
			}
		}
		return argocd.AppStatus{}, fmt.Errorf("application %q not found", app)
	}
	return s, nil
}

// Refresh makes Run reconcile now instead of at its next interval.
func (c *Controller) Refresh(_ context.Context, _ string) error {
	c.lazyInit()
	select {
	case c.refresh <- struct{}{}:
	default:
	}
	return nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
