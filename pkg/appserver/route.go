package appserver

import (
	"context"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/github"
	"github.com/canarybot/canarybot/pkg/github/webhook"
)

// Run drains the webhook queue and sweeps every interval until ctx ends:
// the sweep rescans installations and repositories (what a lost
// installation delivery would have changed) and recovers each served
// repository's missed PR events and ChatOps commands.
func (s *Server) Run(ctx context.Context, sweepEvery time.Duration) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	go s.queue.Run(ctx, s.route)
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.sweep(ctx, sweepEvery)
	}
}

func (s *Server) sweep(ctx context.Context, every time.Duration) {
	if err := s.scan(ctx); err != nil && ctx.Err() == nil {
		s.cfg.Log.Warn("rescan of installations failed; retrying at the next sweep", "err", err, "every", every)
	}
	s.recheckIdle(ctx)
	for _, sv := range s.servedList() {
		if err := sv.bot.Router.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Log.Warn("sweep failed; retrying at the next one", "repo", sv.info.FullName(), "err", err)
		}
	}
}

// recheckIdle looks again for .canarybot/ in the idle repositories; the
// answers are ETag-revalidated, so unchanged ones cost no rate limit.
func (s *Server) recheckIdle(ctx context.Context) {
	s.mu.Lock()
	idle := make([]*candidate, 0, len(s.idle))
	for _, c := range s.idle {
		idle = append(idle, c)
	}
	s.mu.Unlock()
	for _, c := range idle {
		s.consider(ctx, c, true)
	}
}

func (s *Server) servedList() []*served {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*served, 0, len(s.repos))
	for _, sv := range s.repos {
		out = append(out, sv)
	}
	return out
}

func (s *Server) lookup(owner, name string) *served {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repos[key(owner+"/"+name)]
}

// route sends one delivery where it belongs. Errors are logged here: the
// queue has no one to return them to, and the sweep redoes what was
// missed.
func (s *Server) route(ctx context.Context, ev webhook.Event) {
	log := s.cfg.Log.With("event", ev.Kind, "delivery", ev.Delivery)
	switch ev.Kind {
	case webhook.KindInstallation, webhook.KindInstallationRepos:
		s.installationChanged(ctx, ev)
	case webhook.KindPackage:
		n := s.cfg.Fleet.Wake(func(_ string, p *canary.CanaryPlan) bool {
			src := p.Spec.Model.Source.OCI
			return src != nil && strings.EqualFold(src.Repository, ev.Package.Repository)
		})
		log.Info("new package version; woke the plans watching it", "repository", ev.Package.Repository,
			"digest", ev.Package.Digest, "plans", n)
	case webhook.KindPush:
		s.pushed(ctx, ev)
	default:
		sv := s.lookup(ev.Owner, ev.Repo)
		if sv == nil {
			log.Info("event for a repository not served ignored", "repo", ev.Owner+"/"+ev.Repo)
			return
		}
		if ev.Installation != 0 && sv.sess.Installation() != 0 && ev.Installation != sv.sess.Installation() {
			log.Warn("event names another installation than the repository's; ignored", "repo", ev.Owner+"/"+ev.Repo,
				"installation", ev.Installation, "served_by", sv.sess.Installation())
			return
		}
		sv.bot.Router.Handle(ctx, ev)
	}
}

// pushed wakes a served repository to fetch at once (its plans may have
// changed), and looks for plans in an idle one whose push touched
// .canarybot/.
func (s *Server) pushed(ctx context.Context, ev webhook.Event) {
	full := ev.Owner + "/" + ev.Repo
	if sv := s.lookup(ev.Owner, ev.Repo); sv != nil {
		if ev.Push.Branch == sv.info.DefaultBranch {
			s.cfg.Fleet.Refresh(sv.info.FullName())
		}
		return
	}
	s.mu.Lock()
	c, idle := s.idle[key(full)]
	s.mu.Unlock()
	if !idle || ev.Push.Branch != c.info.DefaultBranch || !touchesBotDir(ev.Push) {
		return
	}
	s.consider(ctx, c, true)
}

func touchesBotDir(p *webhook.Push) bool {
	if p.Truncated {
		return true
	}
	for _, f := range p.Paths {
		if strings.HasPrefix(f, BotDir+"/") {
			return true
		}
	}
	return false
}

// installationChanged serves the repositories an installation gained
// and stops serving those it lost.
func (s *Server) installationChanged(ctx context.Context, ev webhook.Event) {
	r := ev.Repos
	log := s.cfg.Log.With("installation", ev.Installation, "account", r.Account, "action", r.Action)
	if s.cfg.App == nil {
		log.Info("installation event ignored: canarybot runs with a token")
		return
	}
	if r.Action == "deleted" {
		for _, sv := range s.servedList() {
			if sv.sess.Installation() == ev.Installation {
				s.drop(key(sv.info.FullName()), "the App was uninstalled")
			}
		}
		s.cfg.App.Forget(ev.Installation)
		return
	}
	for _, full := range r.Removed {
		s.drop(key(full), "removed from the installation")
	}
	if len(r.Added) == 0 {
		return
	}
	sess, err := s.cfg.App.Session(ctx, ev.Installation)
	if err != nil {
		log.Warn("cannot serve the installation's new repositories; the next sweep retries", "err", err)
		return
	}
	for _, full := range r.Added {
		owner, name, err := splitRepo(full)
		if err == nil {
			var info github.Repository
			if info, err = sess.Repository(ctx, owner, name); err == nil {
				s.consider(ctx, &candidate{sess: sess, info: info}, true)
			}
		}
		if err != nil {
			log.Warn("cannot serve an added repository; the next sweep retries", "repo", full, "err", err)
		}
	}
}

// planRefs are the plans of repository full driven now, for its router.
func (s *Server) planRefs(full string) []github.PlanRef {
	c := s.cfg.Fleet.Catalog(full)
	if c == nil {
		return nil
	}
	refs := make([]github.PlanRef, 0, len(c.Plans))
	for _, e := range c.Plans {
		ref := github.PlanRef{Name: e.Plan.Metadata.Name}
		if src := e.Plan.Spec.Model.Source.OCI; src != nil {
			ref.OCIRepository = strings.ToLower(src.Repository)
		}
		refs = append(refs, ref)
	}
	return refs
}

// wakePlan wakes one plan of repository full.
func (s *Server) wakePlan(full, plan string) {
	s.cfg.Fleet.Wake(func(repo string, p *canary.CanaryPlan) bool {
		return repo == full && p.Metadata.Name == plan
	})
}

// status answers /canarybot status from the clone's last fetched head.
func (s *Server) status(full string, local interface {
	Tree(ctx context.Context, rev string) (canary.Tree, error)
}) func(ctx context.Context, plan string) (string, error) {
	return func(ctx context.Context, plan string) (string, error) {
		t, err := local.Tree(ctx, "")
		if err != nil {
			return "", err
		}
		st, err := canary.ReadState(t, plan)
		if err != nil {
			return "", err
		}
		return canary.Summary(plan, st), nil
	}
}

// Wire gives an engine of repository full its GitHub side: approvals
// through reviews, ChatOps signals, and ChatOps answers after each tick.
// Call it from the fleet's NewEngine.
func (s *Server) Wire(full string, eng *canary.Engine) {
	s.mu.Lock()
	sv := s.repos[key(full)]
	ctx := s.ctx
	s.mu.Unlock()
	if sv == nil {
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
	eng.Approvals, eng.Signals = sv.bot.Publisher, sv.bot.ChatOps
	observe := sv.bot.OnTick(ctx)
	prev := eng.OnTick
	eng.OnTick = func(r canary.Report) {
		if prev != nil {
			prev(r)
		}
		observe(r)
	}
}
