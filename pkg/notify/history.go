package notify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/canarybot/canarybot/pkg/canary"
)

// commitEvents are one commit's events, and the plan they are about as
// it was at the commit (nil when unknown).
type commitEvents struct {
	events []Event
	plan   *canary.CanaryPlan
}

type parentOf struct {
	c  Commit
	ok bool
}

// maxCached bounds each per-commit cache; a full cache starts over.
const maxCached = 1 << 13

// walk returns the commits after cursor up to head, oldest first, along
// head's first parents: the commits that landed on the branch one by one
// (a merged pull request is its merge commit). found is false when
// cursor is not within MaxWalk commits of head.
func (n *Notifier) walk(ctx context.Context, head Commit, cursor string) ([]Commit, bool, error) {
	var out []Commit
	c := head
	for c.SHA != cursor {
		if len(out) == n.cfg.MaxWalk {
			return nil, false, nil
		}
		out = append(out, c)
		p, ok, err := n.firstParent(ctx, c.SHA)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, nil
		}
		c = p
	}
	slices.Reverse(out)
	return out, true, nil
}

// maxCount bounds how far countSkipped looks for a lost cursor.
const maxCount = 100000

// countSkipped counts the first-parent commits from head back to cursor:
// a number, or a phrase when the cursor is not found.
func (n *Notifier) countSkipped(ctx context.Context, head Commit, cursor string) string {
	c := head
	for i := 0; i < maxCount; i++ {
		if c.SHA == cursor {
			return fmt.Sprint(i)
		}
		p, ok, err := n.firstParent(ctx, c.SHA)
		if err != nil || !ok {
			return fmt.Sprintf("%d or more (the cursor is not in the first-parent history)", i)
		}
		c = p
	}
	return fmt.Sprintf("more than %d", maxCount)
}

func (n *Notifier) firstParent(ctx context.Context, sha string) (Commit, bool, error) {
	n.mu.Lock()
	p, hit := n.parents[sha]
	n.mu.Unlock()
	if hit {
		return p.c, p.ok, nil
	}
	c, ok, err := n.cfg.Source.FirstParent(ctx, sha)
	if err != nil {
		return Commit{}, false, fmt.Errorf("read the parent of %s: %w", short(sha), err)
	}
	n.mu.Lock()
	if len(n.parents) >= maxCached {
		clear(n.parents)
	}
	n.parents[sha] = parentOf{c: c, ok: ok}
	n.mu.Unlock()
	return c, ok, nil
}

// eventsAt derives c's events, cached by commit. A state or plan that
// cannot be read is logged and the events carry what the trailers say.
func (n *Notifier) eventsAt(ctx context.Context, c Commit, v *view) (commitEvents, error) {
	n.mu.Lock()
	ce, hit := n.events[c.SHA]
	n.mu.Unlock()
	if hit {
		return ce, nil
	}
	name := c.Trailer(canary.TrailerPlan)
	if _, transition := eventOf[c.Trailer(canary.TrailerAction)]; name != "" && transition {
		t, err := n.cfg.Source.Tree(ctx, c.SHA)
		if err != nil {
			return commitEvents{}, err
		}
		st, err := canary.ReadState(t, name)
		if err != nil {
			n.cfg.Log.Warn("notifications: cannot read the state a transition wrote; its notice carries the trailers only",
				"repo", n.cfg.Repository, "commit", short(c.SHA), "plan", name, "err", err)
		}
		ce.plan = n.planAt(ctx, t, name, v)
		ce.events = Derive(c, st, ce.plan)
	}
	n.mu.Lock()
	if len(n.events) >= maxCached {
		clear(n.events)
	}
	n.events[c.SHA] = ce
	n.mu.Unlock()
	return ce, nil
}

// planAt finds the valid plan named name in t: in the file that holds it
// at the head when that file holds it in t too, else by discovering t.
func (n *Notifier) planAt(ctx context.Context, t canary.Tree, name string, v *view) *canary.CanaryPlan {
	for _, e := range v.catalog.Plans {
		if e.Plan.Metadata.Name != name {
			continue
		}
		if p, err := canary.ReadPlan(t, e.Path); err == nil && p.Metadata.Name == name {
			return p
		}
	}
	c, err := n.cfg.Catalog(ctx, t)
	if err != nil {
		return nil
	}
	p, _ := c.Lookup(name)
	return p
}

// Offer hands the Notifier the catalog of a revision that its caller
// discovered anyway (fleet.Config.OnCatalog), sparing it the work, and
// pokes it: the head moved, or may have.
func (n *Notifier) Offer(c *canary.Catalog) {
	if c != nil && c.Head != "" {
		n.keepCatalog(c.Head, c)
	}
	n.Poke()
}

func (n *Notifier) keepCatalog(sha string, c *canary.Catalog) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.catalogs) >= 64 {
		clear(n.catalogs)
	}
	n.catalogs[sha] = c
}

// catalogAt is the catalog at sha, cached by commit.
func (n *Notifier) catalogAt(ctx context.Context, sha string) (*canary.Catalog, error) {
	n.mu.Lock()
	c, hit := n.catalogs[sha]
	n.mu.Unlock()
	if hit {
		return c, nil
	}
	t, err := n.cfg.Source.Tree(ctx, sha)
	if err != nil {
		return nil, err
	}
	c, err = n.cfg.Catalog(ctx, t)
	if errors.Is(err, fs.ErrNotExist) {
		c, err = &canary.Catalog{Head: sha}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("plans at %s: %w", short(sha), err)
	}
	n.keepCatalog(sha, c)
	return c, nil
}
