package e2e

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canarybot/canarybot/pkg/argocd"
	"github.com/canarybot/canarybot/pkg/argocd/local"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/github"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/kustomize"
	"github.com/canarybot/canarybot/pkg/registry/notify"
	"github.com/canarybot/canarybot/pkg/registry/oci"
)

// startBot wires canarybot serve's parts as the command does, as the
// fake's GitHub App, and runs the engine, the queue and the sweep.
func (w *world) startBot() {
	t, ctx := w.t, w.ctx
	w.metrics = prometheus.NewRegistry()
	m, err := github.NewMetrics(w.metrics)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := github.Connect(ctx, github.Auth{APIURL: w.gh.URL() + "/", AppID: w.gh.AppID(),
		InstallationID: w.gh.InstallationID(), PrivateKey: w.gh.PrivateKeyPEM()},
		&github.Transport{Metrics: m, Cache: github.NewETagCache(256)})
	if err != nil {
		t.Fatalf("connect as the App: %v", err)
	}
	w.botRepo, err = gitops.Open(ctx, gitops.Options{URL: w.gh.CloneURL(owner, repoName), Dir: filepath.Join(t.TempDir(), "bot"),
		TokenSource: sess.GitToken, Logger: w.log})
	if err != nil {
		t.Fatalf("clone over smart HTTP with the installation token: %v", err)
	}
	waker := notify.NewWaker()
	bot := github.NewBot(github.BotConfig{Session: sess, Owner: owner, Repo: repoName, Base: "main",
		WebhookSecret: []byte(secret), Plan: github.PlanRef{Name: "qwen", OCIRepository: w.regRepo},
		Local: w.botRepo, Wake: waker.Wake, Log: w.log,
		Status: func(context.Context, string) (string, error) { return "plan qwen is fine", nil }})
	hooks := httptest.NewServer(bot.Handler)
	t.Cleanup(hooks.Close)
	w.botURL = hooks.URL
	w.gh.SetWebhookURL(hooks.URL)

	argo := w.startArgo(waker.Wake)
	q, err := gates.NewPrometheusAPI(w.prom.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	renderer := kustomize.NewRenderer(kustomize.NewBuilder())
	observe := bot.OnTick(ctx)
	eng := &canary.Engine{
		PlanPath: planPath, Repo: bot.Publisher, Renderer: renderer,
		Sync:  &argocd.Waiter{Source: argo, Contains: w.botRepo.Contains},
		Gates: gates.ForPrometheus(q, w.log), Approvals: bot.Publisher, Signals: bot.ChatOps,
		Artifacts: oci.NewWatcher(append(w.regOpts, oci.WithLogger(w.log))...), Stable: renderer.Stable,
		Clock: canary.SystemClock{}, Log: w.log,
		// A long poll: only webhooks, Argo CD syncs and gate timers move
		// the rollout, so the test sees that the webhooks do.
		Poll: 30 * time.Second, MinPoll: 100 * time.Millisecond, Wake: waker.C(),
		OnTick: func(r canary.Report) {
			observe(r)
			w.mu.Lock()
			w.reports = append(w.reports, r)
			w.mu.Unlock()
		},
	}
	w.goRun(func() { bot.Run(ctx, 3*time.Second) })
	w.goRun(func() { _ = eng.Run(ctx) })
	t.Cleanup(func() { w.cancel(); w.running.Wait() }) // runs before the TempDir cleanups above
}

func (w *world) goRun(fn func()) {
	w.running.Add(1)
	go func() {
		defer w.running.Done()
		fn()
	}()
}

// startArgo runs the Argo CD stand-in on its own clone of the bare repo;
// each sync wakes the engine, as an Argo CD notification would.
func (w *world) startArgo(wake func()) *local.Controller {
	t := w.t
	clone, err := gitops.Open(w.ctx, gitops.Options{URL: w.gh.RepoPath(owner, repoName), Dir: filepath.Join(t.TempDir(), "argo"), Logger: w.log})
	if err != nil {
		t.Fatal(err)
	}
	b := kustomize.NewBuilder()
	c := &local.Controller{Checkout: clone.Checkout, Build: b.Build,
		Apply:    func(context.Context, string, []byte) error { return nil },
		OnChange: func(string, argocd.AppStatus) { wake() },
		Apps:     []local.App{{Name: "qwen", Path: "manifests/overlays/qwen"}},
		Clock:    canary.SystemClock{}, Log: w.log, Interval: 300 * time.Millisecond}
	if err := c.Reconcile(w.ctx); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	w.goRun(func() { _ = c.Run(w.ctx) })
	return c
}
