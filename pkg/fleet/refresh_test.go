package fleet

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// A push that adds a plan is picked up at once when the repository is
// refreshed (a push webhook), not at the next poll; every discovery is
// handed to OnCatalog with its invalid plans, and Catalog returns the last.
func TestFleetRefreshPicksUpANewPlanAndReportsCatalogs(t *testing.T) {
	rm := newRemote(t, map[string]string{
		".canarybot/plans/first.yaml": planYAML("first", "setWeight: 100"),
	})
	f, _ := newFleet(t, time.Hour, &logBuffer{}, map[string]*remote{"acme/gitops": rm})
	var mu sync.Mutex
	var seen []*canary.Catalog
	f.cfg.OnCatalog = func(repo string, c *canary.Catalog) {
		if repo != "acme/gitops" {
			t.Errorf("catalog of %q", repo)
		}
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, "the first plan promoted", time.Minute, promoted(rm, "first"))

	rm.commit("add second and a broken plan", map[string]string{
		".canarybot/plans/second.yaml": planYAML("second", "setWeight: 100"),
		".canarybot/plans/broken.yaml": "apiVersion: canarybot.dev/v1alpha1\nkind: CanaryPlan\nmetadata: {name: broken}\nspec: {bogus: 1}\n",
	}, nil)
	if !f.Refresh("acme/gitops") || f.Refresh("acme/other") {
		t.Fatal("Refresh: want true for the served repository only")
	}
	// The poll is an hour: only the refresh can pick the new plan up.
	eventually(t, "the added plan promoted", time.Minute, promoted(rm, "second"))
	c := f.Catalog("acme/gitops")
	if c == nil || len(c.Plans) != 2 || len(c.Invalid) != 1 || c.Invalid[0].Where() != ".canarybot/plans/broken.yaml" {
		t.Fatalf("catalog = %+v", c)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 2 || len(seen[0].Invalid) != 0 || len(seen[len(seen)-1].Invalid) != 1 {
		t.Fatalf("OnCatalog saw %d catalogs; first invalid %d", len(seen), len(seen[0].Invalid))
	}
	if f.Catalog("acme/other") != nil {
		t.Fatal("Catalog of an unserved repository is not nil")
	}
}

// Remove hands the repository to OnRemove once its loop and last ticks
// are done (at once when the fleet never ran), so that nothing reports on
// its plans after.
func TestFleetRemoveCallsOnRemoveAfterTheLastTick(t *testing.T) {
	rm := newRemote(t, map[string]string{".canarybot/plans/first.yaml": planYAML("first", "setWeight: 100")})
	f, _ := newFleet(t, time.Hour, &logBuffer{}, map[string]*remote{"acme/gitops": rm, "acme/other": rm})
	removed := make(chan string, 2)
	f.cfg.OnRemove = func(repo string) { removed <- repo }
	if !f.Remove("acme/other") || <-removed != "acme/other" {
		t.Fatal("OnRemove not called for a fleet that never ran")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	eventually(t, "the plan promoted", time.Minute, promoted(rm, "first"))
	f.Remove("acme/gitops")
	select {
	case repo := <-removed:
		if repo != "acme/gitops" {
			t.Errorf("OnRemove(%q)", repo)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("OnRemove not called after Remove")
	}
	cancel()
	<-done
	if len(removed) != 0 {
		t.Errorf("OnRemove called again: %q", <-removed)
	}
}
