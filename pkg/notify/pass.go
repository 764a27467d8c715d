package notify

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/redact"
)

// view is the configuration at one head: every channel is routed as the
// head says, whatever older commits said.
type view struct {
	head    Commit
	catalog *canary.Catalog
	// defaults are .canarybot/config.yaml's channels.
	defaults []canary.NotificationChannel
	// names lists every channel the head configures, sorted.
	names []string
}

// route returns the channel named name for an event of plan: the plan's
// own list as valid at the head, else as at the commit (atCommit, when
// the plan is gone or broken at the head), else the defaults.
func (v *view) route(plan string, atCommit *canary.CanaryPlan, name string) (canary.NotificationChannel, bool) {
	p, ok := v.catalog.Lookup(plan)
	if !ok {
		p = atCommit
	}
	for _, c := range canary.NotificationsFor(p, v.defaults) {
		if c.Name == name {
			return c, true
		}
	}
	return canary.NotificationChannel{}, false
}

// headView reads the head and its configuration, cached by head.
func (n *Notifier) headView(ctx context.Context) (*view, error) {
	sha, err := n.cfg.Source.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("notify %s: read head: %w", n.cfg.Repository, err)
	}
	n.mu.Lock()
	v := n.view
	n.mu.Unlock()
	if v != nil && v.head.SHA == sha {
		return v, nil
	}
	head, err := n.cfg.Source.Commit(ctx, sha)
	if err != nil {
		return nil, fmt.Errorf("notify %s: %w", n.cfg.Repository, err)
	}
	t, err := n.cfg.Source.Tree(ctx, sha)
	if err != nil {
		return nil, fmt.Errorf("notify %s: %w", n.cfg.Repository, err)
	}
	c, err := n.catalogAt(ctx, sha)
	if err != nil {
		return nil, fmt.Errorf("notify %s: %w", n.cfg.Repository, err)
	}
	v = &view{head: head, catalog: c}
	cfg, err := canary.ReadRepositoryConfig(t.FS)
	if err != nil {
		n.cfg.Log.Warn("notifications: the repository config is invalid; its default channels are not used",
			"repo", n.cfg.Repository, "commit", short(sha), "err", redact.URL(err.Error()))
	} else if cfg != nil {
		v.defaults = cfg.Spec.Notifications
	}
	seen := map[string]bool{}
	for _, list := range append([][]canary.NotificationChannel{v.defaults}, planLists(c)...) {
		for _, ch := range list {
			if !seen[ch.Name] {
				seen[ch.Name] = true
				v.names = append(v.names, ch.Name)
			}
		}
	}
	sort.Strings(v.names)
	n.mu.Lock()
	n.view = v
	n.mu.Unlock()
	return v, nil
}

func planLists(c *canary.Catalog) [][]canary.NotificationChannel {
	var out [][]canary.NotificationChannel
	for _, e := range c.Plans {
		out = append(out, e.Plan.Spec.Notifications)
	}
	return out
}

// pass delivers to ch, in order, every event from its cursor to the head
// of v, then moves the cursor to the head. On a failure it moves the
// cursor to the last commit whose events all went, and returns the error.
func (n *Notifier) pass(ctx context.Context, ch *channel) error {
	ch.passMu.Lock()
	defer ch.passMu.Unlock()
	v, err := n.headView(ctx)
	if err != nil {
		return err
	}
	if ch.cursor == v.head.SHA {
		return nil // nothing new since this process last moved the cursor
	}
	log := n.cfg.Log.With("repo", n.cfg.Repository, "channel", ch.name)
	cursor, err := n.cfg.Cursors.Cursor(ctx, ch.name)
	if err != nil {
		return fmt.Errorf("notify %s channel %s: %w", n.cfg.Repository, ch.name, err)
	}
	ch.cursor = cursor
	if cursor == "" {
		log.Info("notifications: channel has no cursor yet; it starts at the head, and nothing older is sent",
			"head", short(v.head.SHA), "ref", CursorRef(ch.name))
		return n.moveCursor(ctx, ch, v.head.SHA)
	}
	if cursor == v.head.SHA {
		return nil
	}
	commits, found, err := n.walk(ctx, v.head, cursor)
	if err != nil {
		return fmt.Errorf("notify %s channel %s: %w", n.cfg.Repository, ch.name, err)
	}
	if !found {
		if ahead, err := n.cfg.Source.Contains(ctx, cursor, v.head.SHA); err == nil && ahead {
			log.Debug("notifications: the cursor is ahead of the local head; waiting for a fetch", "cursor", short(cursor),
				"head", short(v.head.SHA))
			return nil
		}
		skipped := n.countSkipped(ctx, v.head, cursor)
		log.Warn("notifications: the cursor is too far behind the head, or not in its first-parent history; "+
			"skipping to the head: the events in between are not sent", "cursor", short(cursor), "head", short(v.head.SHA),
			"skipped_commits", skipped, "max_walk", n.cfg.MaxWalk)
		return n.moveCursor(ctx, ch, v.head.SHA)
	}
	return n.deliverAll(ctx, ch, v, cursor, commits)
}

// stopTimeout bounds the cursor's move after a failed or cut-short pass.
const stopTimeout = 10 * time.Second

// cursorBatch is how many commits may be delivered between two cursor
// moves in one pass: a crash repeats at most that many commits' events.
const cursorBatch = 50

// deliverAll delivers the events of commits (oldest first, the head
// last; planInvalid events go with the head) and moves the cursor.
func (n *Notifier) deliverAll(ctx context.Context, ch *channel, v *view, cursor string, commits []Commit) error {
	done := ""
	for i, c := range commits {
		ce, err := n.eventsAt(ctx, c, v)
		if err != nil {
			return n.stop(ctx, ch, done, fmt.Errorf("notify %s channel %s: %w", n.cfg.Repository, ch.name, err))
		}
		events := ce.events
		var before *canary.Catalog
		if c.SHA == v.head.SHA {
			if before, err = n.catalogAt(ctx, cursor); err != nil {
				return n.stop(ctx, ch, done, fmt.Errorf("notify %s channel %s: %w", n.cfg.Repository, ch.name, err))
			}
			events = slices.Concat(events, DeriveInvalid(v.head, before.Invalid, v.catalog.Invalid))
		}
		for _, e := range events {
			atCommit := ce.plan
			if e.Type == canary.EventPlanInvalid {
				atCommit = planAtPath(before, e.Path)
			}
			def, ok := v.route(e.Plan, atCommit, ch.name)
			if !ok || !def.Wants(e.Type) || ch.sent.contains(e.ID) {
				continue
			}
			if err := n.deliver(ctx, def, n.decorate(e)); err != nil {
				return n.stop(ctx, ch, done, err)
			}
			ch.sent.add(e.ID)
		}
		done = c.SHA
		if (i+1)%cursorBatch == 0 && done != v.head.SHA {
			if err := n.moveCursor(ctx, ch, done); err != nil {
				return err
			}
		}
	}
	return n.moveCursor(ctx, ch, v.head.SHA)
}

// stop ends a failed pass: the cursor moves to done, the last commit
// whose events all went ("" when none did), and err is returned. The
// cursor moves even when the pass was cut short by shutdown, briefly.
func (n *Notifier) stop(ctx context.Context, ch *channel, done string, err error) error {
	if done != "" {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		if merr := n.moveCursor(ctx, ch, done); merr != nil {
			n.cfg.Log.Warn("notifications: cannot move the cursor after a failure; the next pass repeats nothing it "+
				"remembers", "repo", n.cfg.Repository, "channel", ch.name, "err", merr)
		}
	}
	return err
}

// moveCursor sets ch's cursor on the remote from its last known value.
func (n *Notifier) moveCursor(ctx context.Context, ch *channel, to string) error {
	if ch.cursor == to {
		return nil
	}
	if err := n.cfg.Cursors.SetCursor(ctx, ch.name, ch.cursor, to); err != nil {
		ch.cursor = "" // unknown: read it again next pass
		return fmt.Errorf("notify %s channel %s: %w", n.cfg.Repository, ch.name, err)
	}
	ch.cursor = to
	return nil
}

// deliver sends e to def, counting it. Errors hide def's secrets.
func (n *Notifier) deliver(ctx context.Context, def canary.NotificationChannel, e Event) error {
	s, secrets, err := newSender(def, n.cfg.Secrets, n.cfg.HTTP)
	if err == nil {
		sendCtx, cancel := context.WithTimeout(ctx, DefaultSendTimeout)
		err = s.Send(sendCtx, e)
		cancel()
	}
	if err != nil {
		if n.cfg.Metrics != nil && ctx.Err() == nil {
			n.cfg.Metrics.Failed(def.Name)
		}
		return fmt.Errorf("notify %s channel %s: deliver %s: %w", n.cfg.Repository, def.Name, e.ID,
			redact.ErrorValues(err, secrets...))
	}
	if n.cfg.Metrics != nil {
		n.cfg.Metrics.Sent(def.Name, e.Type)
	}
	n.cfg.Log.Info("notification sent", "repo", n.cfg.Repository, "channel", def.Name, "event", e.Type,
		"plan", e.Plan, "id", e.ID)
	return nil
}

// decorate adds what the Notifier knows of the repository.
func (n *Notifier) decorate(e Event) Event {
	e.Repository = n.cfg.Repository
	if n.cfg.WebURL != "" {
		e.CommitURL = n.cfg.WebURL + "/commit/" + e.Commit
	}
	return e
}

func planAtPath(c *canary.Catalog, path string) *canary.CanaryPlan {
	if c == nil {
		return nil
	}
	for _, e := range c.Plans {
		if e.Path == path {
			return e.Plan
		}
	}
	return nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
