// Package demo runs canarybot's whole loop on one machine with nothing to
// configure: a bare Git repo, an in-process OCI registry, a local stand-in
// for Argo CD, simulated model servers behind a weighted router, and the
// real Prometheus binary scraping them. Two rollouts run: v2 is promoted,
// v3 (40% slower) is reverted by the judge, whose verdicts it prints.
package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/canarybot/canarybot/internal/modelsim"
	"github.com/canarybot/canarybot/pkg/argocd"
	"github.com/canarybot/canarybot/pkg/argocd/local"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/kustomize"
	"github.com/canarybot/canarybot/pkg/promserver"
	"github.com/canarybot/canarybot/pkg/registry/oci"
)

//go:embed plan.yaml
var planYAML []byte

// Options configure Run.
type Options struct {
	// Dir keeps all state: the GitOps repo, the registry's blobs and
	// Prometheus's data. Running again with the same Dir resumes.
	Dir string
	// Out receives progress lines.
	Out io.Writer
	Log *slog.Logger
	// Prometheus is the prometheus binary; "" looks it up in PATH.
	Prometheus string
	// Timeout bounds the whole demo.
	Timeout time.Duration
	// RPS is the simulated request rate.
	RPS   float64
	Clock canary.Clock
}

// stack is everything the demo started; close stops it.
type stack struct {
	reg     *ociRegistry
	prom    *promserver.Server
	servers []*modelsim.Server
	router  *modelsim.Router
	cluster *cluster
	argo    *local.Controller
	repo    *gitops.Repo
	closers []func() error
}

func (s *stack) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i]()
	}
}

// Run runs the demo until v3 is reverted, or ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	p := &printer{out: o.Out, clock: o.Clock, start: o.Clock.Now()}
	p.say("canarybot demo: state in %s", o.Dir)
	s := &stack{}
	defer s.close()
	arts, err := s.startRegistry(ctx, o, p)
	if err != nil {
		return err
	}
	if err := s.startRepo(ctx, o, p, arts[0]); err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	d := &driver{stack: s, printer: p, versions: versions(), arts: arts, done: stop}
	if err := d.resume(ctx); err != nil {
		return err
	}
	if err := s.startServing(ctx, o, p, arts); err != nil {
		return err
	}
	go func() { _ = s.argo.Run(runCtx) }()
	eng, err := s.engine(o, p, d)
	if err != nil {
		return err
	}
	err = eng.Run(runCtx)
	if d.finished {
		p.say("v2 promoted to 100%%, v3 reverted by gate %s. GitOps history:", d.revertGate)
		return printLog(ctx, o.Out, o.Dir)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("demo did not finish: %w", ctx.Err())
	}
	return fmt.Errorf("engine stopped: %w", err)
}

// startRegistry publishes v1 and v2; v3 comes once v2 is promoted.
func (s *stack) startRegistry(ctx context.Context, o Options, p *printer) ([]canary.Artifact, error) {
	reg, err := startRegistry(filepath.Join(o.Dir, "registry"))
	if err != nil {
		return nil, err
	}
	s.reg = reg
	s.closers = append(s.closers, reg.close)
	arts := make([]canary.Artifact, 3)
	for i, v := range versions()[:2] {
		if arts[i], err = reg.push(ctx, v); err != nil {
			return nil, err
		}
		p.say("registry: pushed model %s as %s", v.Tag, arts[i].URI)
	}
	return arts, nil
}

func (s *stack) startRepo(ctx context.Context, o Options, p *printer, v1 canary.Artifact) error {
	remote := filepath.Join(o.Dir, "gitops.git")
	seeded, err := seedRepo(ctx, remote, planYAML, o.Clock.Now())
	if err != nil {
		return err
	}
	if !seeded {
		p.say("git: resuming from %s", remote)
	}
	repo, err := gitops.Open(ctx, gitops.Options{
		URL: remote, Branch: branch, Dir: filepath.Join(o.Dir, "bot-clone"), Clock: o.Clock, Logger: o.Log,
		AuthorName: "canarybot", AuthorEmail: "canarybot@users.noreply.github.com",
	})
	if err != nil {
		return fmt.Errorf("open gitops repo: %w", err)
	}
	s.repo = repo
	res, err := bootstrap(ctx, repo, kustomize.NewRenderer(kustomize.NewBuilder()), v1)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if !res.NoOp {
		p.say("git: adopted %s as stable in %s", v1.Version, short(res.SHA))
	}
	return nil
}

func (s *stack) startServing(ctx context.Context, o Options, p *printer, arts []canary.Artifact) error {
	plan, err := canary.ParsePlan(planYAML)
	if err != nil {
		return fmt.Errorf("embedded demo plan: %w", err)
	}
	if err := s.startModels(ctx, o, plan); err != nil {
		return err
	}
	for i, a := range arts {
		if !a.IsZero() {
			s.cluster.register(a, versions()[i])
		}
	}
	prom, err := promserver.Start(ctx, promserver.Options{
		Dir: filepath.Join(o.Dir, "prometheus"), ScrapeInterval: time.Second, Logger: o.Log, Binary: o.Prometheus,
		Targets: []promserver.Target{{Addr: hostPort(s.servers[0].URL())}, {Addr: hostPort(s.servers[1].URL())}},
	})
	if errors.Is(err, promserver.ErrNotInstalled) {
		return fmt.Errorf("%w\n(run `make demo`, which installs it when it can)", err)
	}
	if err != nil {
		return fmt.Errorf("start prometheus: %w", err)
	}
	s.prom = prom
	s.closers = append(s.closers, prom.Stop)
	p.say("prometheus: %s scraping both model servers every 1s", prom.URL())
	argoRepo, err := gitops.Open(ctx, gitops.Options{URL: filepath.Join(o.Dir, "gitops.git"), Branch: branch,
		Dir: filepath.Join(o.Dir, "argocd-clone"), Clock: o.Clock, Logger: o.Log})
	if err != nil {
		return fmt.Errorf("open repo for the Argo CD stand-in: %w", err)
	}
	b := kustomize.NewBuilder()
	s.argo = &local.Controller{Checkout: argoRepo.Checkout, Build: b.Build, Apply: s.cluster.apply,
		Apps:  []local.App{{Name: plan.Spec.ArgoCD.Application, Path: plan.Spec.Overlay}},
		Clock: o.Clock, Log: o.Log, Interval: time.Second}
	if err := s.argo.Reconcile(ctx); err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	return nil
}

// startModels starts the stable and canary model servers, the router and
// the load generator.
func (s *stack) startModels(ctx context.Context, o Options, plan *canary.CanaryPlan) error {
	v1 := versions()[0]
	for _, role := range []modelsim.Role{modelsim.RoleStable, modelsim.RoleCanary} {
		srv, err := modelsim.NewServer(modelsim.ServerConfig{ModelName: "qwen", Version: v1.Tag, Role: role,
			Behaviour: v1.Behaviour, Logger: o.Log})
		if err != nil {
			return err
		}
		if err := srv.Start(ctx, "127.0.0.1:0"); err != nil {
			return err
		}
		s.servers = append(s.servers, srv)
		s.closers = append(s.closers, srv.Close)
	}
	router, err := modelsim.NewRouter(modelsim.RouterConfig{StableURL: s.servers[0].URL(), CanaryURL: s.servers[1].URL(),
		StableWeight: 100, Logger: o.Log})
	if err != nil {
		return err
	}
	if err := router.Start(ctx, "127.0.0.1:0"); err != nil {
		return err
	}
	s.router = router
	s.closers = append(s.closers, router.Close)
	s.cluster = &cluster{traffic: plan.Spec.Traffic.Gateway, stable: s.servers[0], canary: s.servers[1],
		router: router, byURI: map[string]version{}}
	load, err := modelsim.NewLoadGenerator(modelsim.LoadConfig{URL: router.URL() + "/v1/completions",
		RPS: o.RPS, Model: "qwen", Logger: o.Log})
	if err != nil {
		return err
	}
	loadCtx, cancel := context.WithCancel(ctx)
	s.closers = append(s.closers, func() error { cancel(); return nil })
	go func() { _ = load.Run(loadCtx) }()
	return nil
}

func (s *stack) engine(o Options, p *printer, d *driver) (*canary.Engine, error) {
	q, err := gates.NewPrometheusAPI(s.prom.URL(), nil)
	if err != nil {
		return nil, fmt.Errorf("prometheus client: %w", err)
	}
	return &canary.Engine{
		PlanPath:  planPath,
		Repo:      s.repo,
		Renderer:  kustomize.NewRenderer(kustomize.NewBuilder()),
		Sync:      &argocd.Waiter{Source: s.argo, Contains: s.repo.Contains},
		Gates:     gates.ForPrometheus(q, o.Log, gates.WithSettle(time.Second)),
		Approvals: &autoApprover{printer: p, approved: map[string]bool{}},
		Artifacts: oci.NewWatcher(s.reg.opts...),
		Stable: func(context.Context, canary.Tree, *canary.CanaryPlan) (canary.Artifact, error) {
			return canary.Artifact{}, errors.New("the demo bootstraps its state; none found")
		},
		Clock: o.Clock, Log: o.Log, Poll: 2 * time.Second, MinPoll: 250 * time.Millisecond,
		OnTick: d.onTick,
	}, nil
}

// DefaultDir is where the demo keeps state when no --dir is given.
func DefaultDir() (string, error) {
	d, err := os.MkdirTemp("", "canarybot-demo-")
	if err != nil {
		return "", fmt.Errorf("demo dir: %w", err)
	}
	return d, nil
}
