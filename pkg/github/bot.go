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

// Bot is the wired GitHub side: the publisher (the engine's Repo and
// Approvals), ChatOps (its Signals), and the webhook handler feeding a
// queue that the router drains.
type Bot struct {
	Publisher *Publisher
	ChatOps   *ChatOps
	Router    *Router
	Handler   *webhook.Handler
	Queue     *webhook.Queue
	log       *slog.Logger
}

// NewBot wires the parts.
func NewBot(cfg BotConfig) *Bot {
	rest := cfg.Session.REST
	perms := &Permissions{GH: rest, Owner: cfg.Owner, Repo: cfg.Repo, TTL: time.Minute}
	wake := func(string) { cfg.Wake() }
	chat := &ChatOps{GH: rest, Owner: cfg.Owner, Repo: cfg.Repo, Bot: cfg.Session.Login, Perms: perms,
		Plans: []string{cfg.Plan.Name}, Status: cfg.Status, Wake: wake, Log: cfg.Log}
	reviews := &Reviews{GH: rest, Owner: cfg.Owner, Repo: cfg.Repo, Bot: cfg.Session.Login, Perms: perms, Promoted: chat.Promoted}
	pub := &Publisher{GH: rest, Owner: cfg.Owner, Repo: cfg.Repo, Base: cfg.Base, Local: cfg.Local, Reviews: reviews,
		MergeMethod: cfg.MergeMethod, RevertNeedsApproval: cfg.RevertNeedsApproval, Log: cfg.Log}
	router := &Router{GH: rest, Owner: cfg.Owner, Repo: cfg.Repo, Plans: []PlanRef{cfg.Plan}, Wake: wake, ChatOps: chat, Log: cfg.Log}
	n := cfg.QueueSize
	if n <= 0 {
		n = 256
	}
	q := webhook.NewQueue(n)
	h := &webhook.Handler{Secret: cfg.WebhookSecret, Seen: webhook.NewDeduper(10000, 24*time.Hour, nil),
		Enqueue: q.Enqueue, Log: cfg.Log, OnAck: cfg.OnAck}
	return &Bot{Publisher: pub, ChatOps: chat, Router: router, Handler: h, Queue: q, log: cfg.Log}
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

// OnTick answers ChatOps commands a tick settled; set it as (part of)
// canary.Engine.OnTick.
func (b *Bot) OnTick(ctx context.Context) func(canary.Report) {
	return func(r canary.Report) {
		if err := b.ChatOps.Observe(ctx, r); err != nil {
			b.log.Warn("could not answer a ChatOps command; it stays pending", "plan", r.Plan, "err", err)
		}
	}
}
