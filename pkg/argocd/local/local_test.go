package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/argocd"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/kustomize"
)

type fixedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}
func (c *fixedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// copyOverlay copies the repo's manifests/ into a temp root.
func copyOverlay(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	err := filepath.Walk("../../../manifests", func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("../../..", p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// The stand-in builds with real kustomize and reports status the way Argo
// CD's automated sync does.
func TestControllerSyncsLikeArgoCD(t *testing.T) {
	ctx := context.Background()
	root := copyOverlay(t)
	head := "1111111111111111111111111111111111111111"
	var applied, changes []string
	c := &Controller{
		Checkout: func(context.Context) (canary.Tree, error) { return canary.Tree{Head: head, FS: os.DirFS(root)}, nil },
		Build:    kustomize.NewBuilder().Build,
		Apply: func(_ context.Context, app string, m []byte) error {
			if !strings.Contains(string(m), "kind: HTTPRoute") {
				return errors.New("no HTTPRoute in the applied manifests")
			}
			applied = append(applied, app)
			return nil
		},
		Apps:     []App{{Name: "qwen", Path: "manifests/overlays/qwen"}},
		Clock:    &fixedClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		Log:      discard(),
		OnChange: func(app string, s argocd.AppStatus) { changes = append(changes, s.SyncRevision[:1]+s.OperationPhase) },
	}
	s, err := c.Status(ctx, "qwen")
	if err != nil || s.Health != argocd.HealthMissing {
		t.Fatalf("before any sync: %+v %v", s, err)
	}
	if _, err := c.Status(ctx, "nope"); err == nil {
		t.Error("an unknown application has a status")
	}
	mustReconcile(t, c)
	s, _ = c.Status(ctx, "qwen")
	if ok, why := argocd.Ready(s, head); !ok || len(applied) != 1 {
		t.Fatalf("first sync not ready: %s (%+v), applied %d", why, s, len(applied))
	}

	// A commit that does not change the app's manifests: Synced at the new
	// head, no new operation, nothing applied.
	head = "2222222222222222222222222222222222222222"
	mustReconcile(t, c)
	s, _ = c.Status(ctx, "qwen")
	if s.SyncRevision != head || s.OperationRevision != "1111111111111111111111111111111111111111" || len(applied) != 1 {
		t.Errorf("no-diff commit: %+v, applied %d", s, len(applied))
	}

	// A broken manifest: the sync fails with the build error.
	head = "3333333333333333333333333333333333333333"
	if err := os.WriteFile(filepath.Join(root, "manifests/overlays/qwen/kustomization.yaml"), []byte("resources: [missing]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustReconcile(t, c)
	s, _ = c.Status(ctx, "qwen")
	if failed, why := argocd.Failed(s, head); !failed || !strings.Contains(why, "build") {
		t.Errorf("broken manifest: failed=%t %q (%+v)", failed, why, s)
	}
	mustReconcile(t, c) // nothing new: no notification
	if want := []string{"1Succeeded", "2Succeeded", "3Failed"}; strings.Join(changes, ",") != strings.Join(want, ",") {
		t.Errorf("notifications %v, want %v", changes, want)
	}
}

func TestControllerRefreshWakesRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := make(chan struct{}, 10)
	c := &Controller{
		Checkout: func(context.Context) (canary.Tree, error) {
			calls <- struct{}{}
			return canary.Tree{}, errors.New("remote unreachable")
		},
		Clock: canary.SystemClock{}, Log: discard(), Interval: time.Hour,
	}
	go func() { _ = c.Run(ctx) }()
	<-calls // the first pass runs at once
	if err := c.Refresh(ctx, "qwen"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-calls:
	case <-time.After(30 * time.Second):
		t.Fatal("Refresh did not trigger a reconcile before the hour-long interval")
	}
}

func mustReconcile(t *testing.T, c *Controller) {
	t.Helper()
	if err := c.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
}
