package github

import (
	"context"
	"log/slog"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/github/webhook"
)

// BotConfig wires canarybot's GitHub side for one repository and one plan.
type BotConfig struct {
	Session           *Session
	Owner, Repo, Base string
	WebhookSecret     []byte
	Plan              PlanRef
	// Local is the working clone of the base branch.
	Local               Local
	MergeMethod         string
	RevertNeedsApproval bool
	// Status renders the plan's rollout for /canarybot status.
	Status func(ctx context.Context, plan string) (string, error)
	// Wake pokes the plan's engine.
	Wake func()
	Log  *slog.Logger
	// QueueSize bounds queued webhook events; 256 when zero.
	QueueSize int
	// OnAck observes each webhook answer's status and latency.
	OnAck func(status int, d time.Duration)
}

// Bot is the wired GitHub side of one repository and its webhook
// endpoint: the RepoBot's parts, and the webhook handler feeding a queue
// that the router drains.
type Bot struct {
	*RepoBot
	Handler *webhook.Handler
	Queue   *webhook.Queue
	log     *slog.Logger
}

// NewBot wires the parts.
func NewBot(cfg BotConfig) *Bot {
	rb := NewRepoBot(RepoConfig{Session: cfg.Session, Owner: cfg.Owner, Repo: cfg.Repo, Base: cfg.Base, Local: cfg.Local,
		MergeMethod: cfg.MergeMethod, RevertNeedsApproval: cfg.RevertNeedsApproval,
		Plans: func() []PlanRef { return []PlanRef{cfg.Plan} }, Status: cfg.Status,
		Wake: func(string) { cfg.Wake() }, Log: cfg.Log})
	n := cfg.QueueSize
	if n <= 0 {
		n = 256
	}
	q := webhook.NewQueue(n)
	h := &webhook.Handler{Secret: cfg.WebhookSecret, Seen: webhook.NewDeduper(10000, 24*time.Hour, nil),
		Enqueue: q.Enqueue, Log: cfg.Log, OnAck: cfg.OnAck}
	return &Bot{RepoBot: rb, Handler: h, Queue: q, log: cfg.Log}
}

// RepoConfig wires canarybot's GitHub side for one repository, whose
// plans may change from one commit to the next.
type RepoConfig struct {
	Session           *Session
	Owner, Repo, Base string
	// Local is the clone of the base branch.
	Local               Local
	MergeMethod         string
	RevertNeedsApproval bool
	// Plans lists the repository's plans driven now.
	Plans func() []PlanRef
	// Status renders a plan's rollout for /canarybot status.
	Status func(ctx context.Context, plan string) (string, error)
	// Wake pokes one plan's engine.
	Wake func(plan string)
	Log  *slog.Logger
}

// RepoBot is one repository's GitHub side: the publisher (the engines'
// Repo and Approvals), ChatOps (their Signals) and the event router.
type RepoBot struct {
	Publisher *Publisher
	ChatOps   *ChatOps
	Router    *Router
}

// NewRepoBot wires one repository's parts.
func NewRepoBot(cfg RepoConfig) *RepoBot {
	rest := cfg.Session.REST
	perms := &Permissions{GH: rest, Owner: cfg.Owner, Repo: cfg.Repo, TTL: time.Minute}
	names := func() []string {
		var out []string
		for _, p := range cfg.Plans() {
			out = append(out, p.Name)
		}
		return out
	}
	chat := &ChatOps{GH: rest, Owner: cfg.Owner, Repo: cfg.Repo, Bot: cfg.Session.Login, Perms: perms,
		Plans: names, Status: cfg.Status, Wake: cfg.Wake, Log: cfg.Log}
	reviews := &Reviews{GH: rest, Owner: cfg.Owner, Repo: cfg.Repo, Bot: cfg.Session.Login, Perms: perms, Promoted: chat.Promoted}
	pub := &Publisher{GH: rest, Owner: cfg.Owner, Repo: cfg.Repo, Base: cfg.Base, Local: cfg.Local, Reviews: reviews,
		MergeMethod: cfg.MergeMethod, RevertNeedsApproval: cfg.RevertNeedsApproval, Log: cfg.Log}
	router := &Router{GH: rest, Owner: cfg.Owner, Repo: cfg.Repo, Plans: cfg.Plans, Wake: cfg.Wake, ChatOps: chat, Log: cfg.Log}
	return &RepoBot{Publisher: pub, ChatOps: chat, Router: router}
}

// OnTick answers ChatOps commands a tick settled; set it as (part of)
// canary.Engine.OnTick.
func (b *RepoBot) OnTick(ctx context.Context) func(canary.Report) {
	return func(r canary.Report) {
		if err := b.ChatOps.Observe(ctx, r); err != nil {
			b.Router.Log.Warn("could not answer a ChatOps command; it stays pending", "plan", r.Plan, "err", err)
		}
	}
}

// Run drains the webhook queue and sweeps every interval until ctx ends.
func (b *Bot) Run(ctx context.Context, sweepEvery time.Duration) {
	go b.Queue.Run(ctx, b.Router.Handle)
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		if err := b.Router.Sweep(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("sweep failed; retrying at the next one", "err", err, "every", sweepEvery)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
