package notify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Defaults of Config.
const (
	DefaultInterval       = 30 * time.Second
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = 5 * time.Minute
	// DefaultMaxWalk bounds the commits one pass walks back from the head
	// to a channel's cursor; a cursor farther behind is moved to the head,
	// with a warning naming how many commits were skipped.
	DefaultMaxWalk = 1000
)

// Metrics counts deliveries; pkg/metrics implements it.
type Metrics interface {
	// Sent counts one event delivered to channel.
	Sent(channel, event string)
	// Failed counts one failed delivery attempt to channel.
	Failed(channel string)
}

// Config wires a Notifier for one repository.
type Config struct {
	// Repository names the repository in notifications (owner/name, or
	// its URL without credentials).
	Repository string
	// WebURL, when the remote is on GitHub, is https://github.com/owner/name:
	// notifications link each commit there.
	WebURL string
	Source Source
	// Cursors keeps each channel's cursor; nil disables delivery (with a
	// warning when channels are configured).
	Cursors Cursors
	// Catalog returns the plans of a revision; canary.DiscoverCached when nil.
	Catalog func(ctx context.Context, t canary.Tree) (*canary.Catalog, error)
	// Secrets reads webhook URLs and signing keys; EnvAndFiles when nil.
	Secrets SecretReader
	// HTTP sends; NewHTTPClient() when nil.
	HTTP *http.Client
	// Metrics is optional.
	Metrics Metrics
	Clock   canary.Clock
	Log     *slog.Logger
	// Interval is the longest time between passes; DefaultInterval when 0.
	Interval time.Duration
	// BackoffInitial (DefaultBackoffInitial when 0) is the wait after a
	// channel's failed pass; it doubles with each failure in a row, up to
	// BackoffMax (DefaultBackoffMax when 0).
	BackoffInitial, BackoffMax time.Duration
	// MaxWalk is DefaultMaxWalk when 0.
	MaxWalk int
}

// Notifier delivers one repository's events to its channels. Run it, and
// Poke it after each fetch or commit.
type Notifier struct {
	cfg   Config
	wake  chan struct{}
	plans canary.PlanCache

	mu sync.Mutex
	// caches, by commit: the head's view, each commit's events and first
	// parent, and catalogs at cursors.
	view     *view
	events   map[string]commitEvents
	parents  map[string]parentOf
	catalogs map[string]*canary.Catalog
	chans    map[string]*channel
	noStore  bool // warned that Cursors is nil
}

// channel is one channel's delivery state.
type channel struct {
	name string
	// passMu serialises passes of the channel; it guards cursor and sent.
	passMu sync.Mutex
	// cursor is the remote cursor as last read or written; "" unknown.
	cursor string
	sent   *idSet

	// Guarded by Notifier.mu, for Run.
	running, pending bool
	failures         int
	retryAt          time.Time
}

// New checks cfg and returns a Notifier.
func New(cfg Config) (*Notifier, error) {
	var errs []error
	if cfg.Source == nil {
		errs = append(errs, errors.New("notify: Source is required"))
	}
	if cfg.Clock == nil {
		errs = append(errs, errors.New("notify: Clock is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Secrets == nil {
		cfg.Secrets = EnvAndFiles{}
	}
	if cfg.HTTP == nil {
		cfg.HTTP = NewHTTPClient()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.BackoffInitial <= 0 {
		cfg.BackoffInitial = DefaultBackoffInitial
	}
	if cfg.BackoffMax < cfg.BackoffInitial {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffInitial)
	}
	if cfg.MaxWalk <= 0 {
		cfg.MaxWalk = DefaultMaxWalk
	}
	n := &Notifier{cfg: cfg, wake: make(chan struct{}, 1), events: map[string]commitEvents{},
		parents: map[string]parentOf{}, catalogs: map[string]*canary.Catalog{}, chans: map[string]*channel{}}
	if cfg.Catalog == nil {
		n.cfg.Catalog = func(_ context.Context, t canary.Tree) (*canary.Catalog, error) {
			return canary.DiscoverCached(t, &n.plans)
		}
	}
	return n, nil
}

// Poke asks for a pass soon: the head moved (a fetch, a commit). It never
// blocks; pokes while a pass runs coalesce into one more pass.
func (n *Notifier) Poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Pass runs one pass of every channel at once, ignoring backoff, and
// returns their errors joined: for `reconcile --once` and tests. Fetch
// the Source first: a cursor that the local clone does not know is taken
// for a rewritten history, and moved to the head.
func (n *Notifier) Pass(ctx context.Context) error {
	v, err := n.headView(ctx)
	if err != nil {
		return err
	}
	chans := n.channels(v)
	errs := make([]error, len(chans))
	var wg sync.WaitGroup
	for i, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.pass(ctx, ch)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Init gives each channel without a cursor one at the head as last
// fetched, so that a first run sends nothing older and loses none of the
// transitions it commits itself.
// Call it after a fetch and before the first transition of this process;
// Pass and Run do the same for a channel they find without a cursor.
func (n *Notifier) Init(ctx context.Context) error {
	v, err := n.headView(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, ch := range n.channels(v) {
		errs = append(errs, n.initChannel(ctx, ch, v))
	}
	return errors.Join(errs...)
}

func (n *Notifier) initChannel(ctx context.Context, ch *channel, v *view) error {
	ch.passMu.Lock()
	defer ch.passMu.Unlock()
	cursor, err := n.cfg.Cursors.Cursor(ctx, ch.name)
	if err != nil || cursor != "" {
		return err
	}
	ch.cursor = ""
	n.cfg.Log.Info("notifications: channel has no cursor yet; it starts at the head, and nothing older is sent",
		"repo", n.cfg.Repository, "channel", ch.name, "head", short(v.head.SHA), "ref", CursorRef(ch.name))
	return n.moveCursor(ctx, ch, v.head.SHA)
}

// Active reports whether the head as last fetched configures any channel
// and the Notifier can keep cursors: whether a pass may send anything.
func (n *Notifier) Active(ctx context.Context) bool {
	v, err := n.headView(ctx)
	return err == nil && len(n.channels(v)) > 0
}

// Run delivers until ctx ends: a pass of every channel at each Poke and
// every Interval, the first at the first of either (so that a clone is
// fetched before its head is trusted). A channel whose pass fails is
// retried after a backoff (BackoffInitial doubling to BackoffMax) while
// the others go on.
func (n *Notifier) Run(ctx context.Context) error {
	done := make(chan passDone)
	running, primed := 0, false
	for {
		if primed {
			running += n.startDue(ctx, done)
		}
		select {
		case <-ctx.Done():
			for ; running > 0; running-- {
				<-done
			}
			return nil
		case <-n.wake:
			primed = true
			n.markPending()
		case d := <-done:
			running--
			n.finish(d)
		case <-n.cfg.Clock.After(n.nextWait()):
			primed = true
			n.markPending()
		}
	}
}

type passDone struct {
	ch  *channel
	err error
}

// startDue starts a pass of each channel at the head that is pending,
// idle and out of backoff, and returns how many it started.
func (n *Notifier) startDue(ctx context.Context, done chan<- passDone) int {
	v, err := n.headView(ctx)
	if err != nil {
		if ctx.Err() == nil {
			n.cfg.Log.Warn("notifications: cannot read the branch head; retrying", "repo", n.cfg.Repository, "err", err)
		}
		return 0
	}
	now := n.cfg.Clock.Now()
	started := 0
	for _, ch := range n.channels(v) {
		n.mu.Lock()
		due := ch.pending && !ch.running && !now.Before(ch.retryAt)
		if due {
			ch.pending, ch.running = false, true
		}
		n.mu.Unlock()
		if due {
			started++
			go func() { done <- passDone{ch: ch, err: n.pass(ctx, ch)} }()
		}
	}
	return started
}

// finish records a pass's outcome: a failure sets the channel's backoff.
func (n *Notifier) finish(d passDone) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch := d.ch
	ch.running = false
	if d.err == nil || errors.Is(d.err, context.Canceled) {
		ch.failures, ch.retryAt = 0, time.Time{}
		return
	}
	ch.failures++
	wait := Backoff(ch.failures, n.cfg.BackoffInitial, n.cfg.BackoffMax)
	ch.retryAt, ch.pending = n.cfg.Clock.Now().Add(wait), true
	n.cfg.Log.Warn("notifications: channel failed; its backlog waits and is retried in order", "repo", n.cfg.Repository,
		"channel", ch.name, "failures", ch.failures, "retry_in", wait, "err", d.err)
}

// Backoff is the wait after the n-th consecutive failure (n ≥ 1):
// initial, doubling, capped at limit.
func Backoff(n int, initial, limit time.Duration) time.Duration {
	d := initial
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// nextWait is the time to the next pass: Interval, or sooner when a
// channel's backoff ends before.
func (n *Notifier) nextWait() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	wait, now := n.cfg.Interval, n.cfg.Clock.Now()
	for _, ch := range n.chans {
		if ch.pending && !ch.running && !ch.retryAt.IsZero() {
			wait = min(wait, max(ch.retryAt.Sub(now), 0))
		}
	}
	return wait
}

func (n *Notifier) markPending() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ch := range n.chans {
		ch.pending = true
	}
}

// channels returns the state of each channel configured at v's head,
// creating it (pending) the first time, and forgets the others.
func (n *Notifier) channels(v *view) []*channel {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cfg.Cursors == nil {
		if len(v.names) > 0 && !n.noStore {
			n.noStore = true
			n.cfg.Log.Warn("notifications are configured but this bot has no cursor store; none are sent",
				"repo", n.cfg.Repository, "channels", v.names)
		}
		return nil
	}
	out := make([]*channel, 0, len(v.names))
	keep := map[string]bool{}
	for _, name := range v.names {
		keep[name] = true
		ch, ok := n.chans[name]
		if !ok {
			ch = &channel{name: name, sent: newIDSet(maxRemembered), pending: true}
			n.chans[name] = ch
		}
		out = append(out, ch)
	}
	for name, ch := range n.chans {
		if !keep[name] && !ch.running {
			delete(n.chans, name)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// maxRemembered bounds the delivered ids a channel remembers in memory.
const maxRemembered = 8192

// idSet remembers the last ids added, up to a bound.
type idSet struct {
	max  int
	has  map[string]bool
	fifo []string
}

func newIDSet(max int) *idSet { return &idSet{max: max, has: map[string]bool{}} }

func (s *idSet) add(id string) {
	if s.has[id] {
		return
	}
	if len(s.fifo) >= s.max {
		delete(s.has, s.fifo[0])
		s.fifo = s.fifo[1:]
	}
	s.has[id] = true
	s.fifo = append(s.fifo, id)
}

func (s *idSet) contains(id string) bool { return s.has[id] }
