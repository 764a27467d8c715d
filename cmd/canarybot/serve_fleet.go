package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/canarybot/canarybot/pkg/appserver"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/fleet"
	"github.com/canarybot/canarybot/pkg/github"
	"github.com/canarybot/canarybot/pkg/github/webhook"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// runFleet serves every plan of every repository: as an App, those of
// every installation that have a .canarybot/ directory; with a token,
// the --github-repository ones. One webhook endpoint, one fleet.
func (o *serveOptions) runFleet(ctx context.Context, log *slog.Logger, reg *prometheus.Registry) error {
	auth, secret, err := o.auth()
	if err != nil {
		return err
	}
	metrics, err := github.NewMetrics(reg)
	if err != nil {
		return err
	}
	tr := &github.Transport{Metrics: metrics, Cache: github.NewETagCache(4096)}
	cfg := appserver.Config{Dir: o.dir, WebhookSecret: secret, MergeMethod: o.mergeMethod,
		RevertNeedsApproval: o.revertNeedsApproval, Log: log, Git: gitops.Options{Logger: log}}
	if auth.Token != "" {
		if cfg.Token, err = github.Connect(ctx, auth, tr); err != nil {
			return err
		}
		cfg.Repos = o.repositories
	} else if cfg.App, err = github.NewApp(ctx, auth, tr); err != nil {
		return err
	}
	rec, err := newRecorder(reg)
	if err != nil {
		return err
	}
	ad, err := o.adapters(log, rec)
	if err != nil {
		return err
	}
	defer ad.close()
	var srv *appserver.Server
	nots := newNotifiers(log, rec, o.notifySecretsDir)
	f, err := fleet.New(fleet.Config{Workers: o.workers, Poll: o.poll, MinPoll: o.minPoll, Clock: canary.SystemClock{}, Log: log,
		NewEngine: func(repo string, plan *canary.CanaryPlan) *canary.Engine {
			r := srv.Local(repo)
			eng := ad.engine(r, r.Contains, log.With("repo", repo))
			srv.Wire(repo, eng)
			eng.Pipeline = servedStages{srv}
			eng.AfterTick = nots.afterTick(repo, rec.AfterTick(repo, plan.Metadata.Name))
			return eng
		},
		OnCatalog: func(repo string, c *canary.Catalog) {
			srv.OnCatalog(repo, c)
			rec.RetainCatalog(repo, c)
			nots.add(repo, githubWeb(o.apiURL, repo), srv.Local(repo), nil)
			nots.offer(ctx, repo, c)
		},
		OnRemove: func(repo string) { rec.Forget(repo); nots.remove(repo) }})
	if err != nil {
		return err
	}
	cfg.Fleet = f
	if srv, err = appserver.New(cfg); err != nil {
		return err
	}
	return o.leader.run(ctx, log, func(ctx context.Context) error {
		nots.start(ctx)
		return o.serveFleet(ctx, log, srv, f, reg)
	})
}

// serveFleet lists what to serve, listens, and runs until ctx ends.
func (o *serveOptions) serveFleet(ctx context.Context, log *slog.Logger, srv *appserver.Server, f *fleet.Fleet,
	reg *prometheus.Registry) error {
	if err := srv.Start(ctx); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/github", srv.Handler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if err := o.statusPage(log, o.servedRepos(srv)); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", o.listen, err)
	}
	hs := webhook.NewServer(mux)
	go func() { _ = hs.Serve(ln) }()
	defer func() {
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shut)
	}()
	log.Info("serving GitHub webhooks for every served repository", "addr", ln.Addr().String(),
		"repositories", len(srv.Served()), "workers", o.workers)
	go srv.Run(ctx, o.sweep)
	return f.Run(ctx)
}
