//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	canarybot "github.com/canarybot/canarybot"
	"github.com/canarybot/canarybot/internal/e2e/kservesim"
	"github.com/canarybot/canarybot/internal/e2e/stack"
	"github.com/canarybot/canarybot/internal/e2e/traffic"
	"github.com/canarybot/canarybot/internal/modelsim"
	"github.com/canarybot/canarybot/internal/promserver"
	"github.com/canarybot/canarybot/pkg/argocd"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/kustomize"
	"github.com/canarybot/canarybot/pkg/registry/oci"
)

const rolloutPlan = `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: qwen}
spec:
  model:
    name: qwen
    source: {oci: {repository: %s, semver: ">=1.0.0"}}
  traffic:
    mode: gateway
    gateway:
      httpRoute: qwen
      stable: {inferenceService: qwen-stable, service: qwen-stable-predictor}
      canary: {inferenceService: qwen-canary, service: qwen-canary-predictor}
  overlay: manifests/overlays/qwen
  argocd: {application: qwen, syncTimeout: 2m}
  steps:
  - setWeight: 30
  - analysis: {gates: [latency-vs-stable]}
  - setWeight: 100
  gates:
  - name: latency-vs-stable
    threshold:
      query: >-
        (sum(rate(vllm:e2e_request_latency_seconds_sum{role="canary"}[10s]))
          / sum(rate(vllm:e2e_request_latency_seconds_count{role="canary"}[10s])))
        / (sum(rate(vllm:e2e_request_latency_seconds_sum{role="stable"}[10s]))
          / sum(rate(vllm:e2e_request_latency_seconds_count{role="stable"}[10s])))
      successCondition: result < 1.2
      initialDelay: 6s
      interval: 2s
      count: 4
      failureLimit: 1
  rollback: {onFailure: revert, onInconclusive: hold, onError: hold, onSyncFailure: revert}
`

// rollout is one plan rolled out on the real stack: Git (a bare repo) →
// Argo CD → kube-apiserver → the KServe stand-in and the traffic loop →
// simulated model servers → Prometheus → canarybot's gates.
type rollout struct {
	t       *testing.T
	ctx     context.Context
	s       *stack.Stack
	bare    string
	regRepo string
	applier *traffic.Applier
	argo    *argocd.Client
	mu      sync.Mutex
	reports []timedReport
}

type timedReport struct {
	at time.Time
	r  canary.Report
}

func good() modelsim.Behaviour {
	return modelsim.Behaviour{ErrorRate: 0.001, LatencyMedian: 150 * time.Millisecond, LatencySigma: 0.3,
		TTFTMedian: 30 * time.Millisecond, TTFTSigma: 0.4, KVCacheUsage: 0.4, QueueDepth: 1}
}

// TestRolloutOnTheRealStack: v2 is promoted; v3, 40% slower, is reverted,
// and Argo CD syncs the revert. It reports breach → revert pushed and
// revert pushed → synced.
func TestRolloutOnTheRealStack(t *testing.T) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	r := &rollout{t: t, ctx: ctx, s: s}
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	r.regRepo = strings.TrimPrefix(reg.URL, "http://") + "/acme/qwen"
	v1 := r.push("1.0.0")
	r.seed(v1)
	if err := s.Application(ctx, "qwen", r.bare, "manifests/overlays/qwen", "models"); err != nil {
		t.Fatal(err)
	}
	r.startCluster(v1)
	eng := r.engine()
	go func() { _ = eng.Run(ctx) }()

	v2 := r.push("2.0.0")
	r.applier.Register(v2.Location(), traffic.Model{Tag: "2.0.0", Behaviour: good()})
	st := r.waitPhase(v2, canary.PhasePromoted, 4*time.Minute)
	t.Logf("v2 promoted: %s", st.Status.Reason)

	slow := good()
	slow.LatencyMedian = 210 * time.Millisecond
	v3 := r.push("3.0.0")
	r.applier.Register(v3.Location(), traffic.Model{Tag: "3.0.0", Behaviour: slow})
	st = r.waitPhase(v3, canary.PhaseReverted, 4*time.Minute)
	if st.Status.Stable.URI != v2.URI {
		t.Fatalf("after the revert stable is %s, want v2", st.Status.Stable.URI)
	}
	breach, pushed, sha := r.revertTimes()
	waitReadyApp(t, ctx, r.argo, "qwen", sha, 2*time.Minute)
	synced := time.Now()
	t.Logf("gate breach → revert commit pushed: %s", pushed.Sub(breach).Round(10*time.Millisecond))
	t.Logf("revert pushed → Argo CD synced and healthy: %s", synced.Sub(pushed).Round(10*time.Millisecond))
	live, err := traffic.Read(ctx, r.dyn(), traffic.Config{Namespace: "models", Traffic: r.plan().Spec.Traffic})
	if err != nil || live.CanaryPercent != 0 || live.StableURI != v2.Location() {
		t.Fatalf("live split after the revert: %+v (%v), want all traffic on v2", live, err)
	}
}

func (r *rollout) plan() *canary.CanaryPlan {
	p, err := canary.ParsePlan([]byte(fmt.Sprintf(rolloutPlan, r.regRepo)))
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

func (r *rollout) push(tag string) canary.Artifact {
	digest, err := oci.Push(r.ctx, r.regRepo, tag, map[string][]byte{"model.json": []byte(`{"v":"` + tag + `"}`)}, oci.WithInsecure())
	if err != nil {
		r.t.Fatalf("push %s: %v", tag, err)
	}
	return canary.Artifact{URI: "oci://" + r.regRepo + "@" + digest, Version: tag}
}

// seed makes the bare repo: the qwen manifests, the plan, and v1 adopted.
func (r *rollout) seed(v1 canary.Artifact) {
	t := r.t
	r.bare = filepath.Join(t.TempDir(), "gitops.git")
	dir := t.TempDir()
	for _, root := range []string{"manifests/base/qwen", "manifests/overlays/qwen"} {
		err := fs.WalkDir(canarybot.Manifests, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := canarybot.Manifests.ReadFile(p)
			if err != nil {
				return err
			}
			return writeFile(filepath.Join(dir, p), b)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := writeFile(filepath.Join(dir, "plans/qwen.yaml"), []byte(fmt.Sprintf(rolloutPlan, r.regRepo))); err != nil {
		t.Fatal(err)
	}
	initBare(t, r.bare, dir)
	human, err := gitops.Open(r.ctx, gitops.Options{URL: r.bare, Dir: filepath.Join(t.TempDir(), "human")})
	if err != nil {
		t.Fatal(err)
	}
	ren := kustomize.NewRenderer(kustomize.NewBuilder())
	if _, err := human.Transact(r.ctx, func(ctx context.Context, tr canary.Tree) (*canary.Change, error) {
		plan, err := canary.ReadPlan(tr, "plans/qwen.yaml")
		if err != nil {
			return nil, err
		}
		st := canary.NewState("qwen", v1)
		files, err := ren.Render(ctx, tr, plan, canary.DesiredOf(st))
		if err != nil {
			return nil, err
		}
		files[canary.StatePath("qwen")], err = canary.MarshalState(st)
		return &canary.Change{Files: files, Subject: "adopt v1"}, err
	}); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

func (r *rollout) dyn() dynamic.Interface {
	cfg, err := clientcmd.BuildConfigFromFlags("", r.s.Kubeconfig)
	if err != nil {
		r.t.Fatal(err)
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// startCluster runs what the cluster would: the KServe stand-in, the
// simulated model servers behind a router that follows the live split,
// load, and Prometheus scraping the servers.
func (r *rollout) startCluster(v1 canary.Artifact) {
	t, ctx := r.t, r.ctx
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { _ = kservesim.Run(ctx, r.dyn(), kservesim.Options{Namespace: "models"}) }()
	var servers []*modelsim.Server
	for _, role := range []modelsim.Role{modelsim.RoleStable, modelsim.RoleCanary} {
		srv, err := modelsim.NewServer(modelsim.ServerConfig{ModelName: "qwen", Version: "1.0.0", Role: role, Behaviour: good(), Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(ctx, "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		servers = append(servers, srv)
	}
	router, err := modelsim.NewRouter(modelsim.RouterConfig{StableURL: servers[0].URL(), CanaryURL: servers[1].URL(), StableWeight: 100, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := router.Start(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	r.applier, err = traffic.NewApplier(traffic.ApplierConfig{Stable: servers[0], Canary: servers[1], Router: router,
		Models: map[string]traffic.Model{v1.Location(): {Tag: "1.0.0", Behaviour: good()}}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		err := traffic.Watch(ctx, r.dyn(), traffic.Config{Namespace: "models", Traffic: r.plan().Spec.Traffic, Logger: log}, r.applier.Apply)
		if err != nil && ctx.Err() == nil {
			t.Errorf("traffic loop: %v", err)
		}
	}()
	load, err := modelsim.NewLoadGenerator(modelsim.LoadConfig{URL: router.URL() + "/v1/completions", RPS: 40, Model: "qwen", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = load.Run(ctx) }()
	prom, err := promserver.Start(ctx, promserver.Options{ScrapeInterval: time.Second, Logger: log, Targets: []promserver.Target{
		{Addr: strings.TrimPrefix(servers[0].URL(), "http://")}, {Addr: strings.TrimPrefix(servers[1].URL(), "http://")}}})
	if err != nil {
		t.Fatalf("prometheus: %v", err)
	}
	t.Cleanup(func() { _ = prom.Stop() })
	r.s.Prometheus = prom.URL()
}

// engine wires canarybot as `canarybot reconcile --auto-approve` does,
// with Argo CD's real apiclient.
func (r *rollout) engine() *canary.Engine {
	t := r.t
	repo, err := gitops.Open(r.ctx, gitops.Options{URL: r.bare, Dir: filepath.Join(t.TempDir(), "bot")})
	if err != nil {
		t.Fatal(err)
	}
	r.argo, err = argocd.NewClient(argocd.ClientOptions{Server: r.s.ArgoCD, PlainText: true, Token: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.argo.Close() })
	q, err := gates.NewPrometheusAPI(r.s.Prometheus, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ren := kustomize.NewRenderer(kustomize.NewBuilder())
	return &canary.Engine{
		PlanPath: "plans/qwen.yaml", Repo: repo, Renderer: ren,
		Sync:      &argocd.Waiter{Source: r.argo, Contains: repo.Contains},
		Gates:     gates.ForPrometheus(q, log, gates.WithSettle(time.Second)),
		Approvals: autoApprove{}, Artifacts: oci.NewWatcher(oci.WithInsecure()), Stable: ren.Stable,
		Clock: canary.SystemClock{}, Log: log, Poll: 2 * time.Second, MinPoll: 250 * time.Millisecond,
		OnTick: func(rep canary.Report) {
			if rep.Decision.Action.Commits() && !rep.Commit.NoOp && rep.Commit.SHA != "" {
				t.Logf("%s step %d weight %d%% commit %.12s — %s", rep.Decision.Action, rep.State.Status.StepIndex,
					rep.Decision.Weight, rep.Commit.SHA, rep.Decision.Reason)
			}
			r.mu.Lock()
			r.reports = append(r.reports, timedReport{at: time.Now(), r: rep})
			r.mu.Unlock()
		},
	}
}

type autoApprove struct{}

func (autoApprove) Approved(context.Context, string, int, canary.Artifact) (bool, error) {
	return true, nil
}
func (autoApprove) Request(context.Context, canary.ApprovalRequest) error { return nil }

// waitPhase waits until a tick reports the plan in phase with a as the
// artifact it concerns.
func (r *rollout) waitPhase(a canary.Artifact, phase string, timeout time.Duration) *canary.RolloutState {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, tr := range r.reports {
			st := tr.r.State
			if st == nil || st.Status.Phase != phase {
				continue
			}
			if st.Status.Stable.URI == a.URI || st.Status.IsFailed(a.URI) {
				r.mu.Unlock()
				return st
			}
		}
		r.mu.Unlock()
		time.Sleep(500 * time.Millisecond)
	}
	r.t.Fatalf("%s did not reach %s within %s\n%s", a.Version, phase, timeout, r.s.Logs(30))
	return nil
}

// revertTimes returns when the failing gate first measured a failure, when
// the revert commit was pushed, and its SHA.
func (r *rollout) revertTimes() (breach, pushed time.Time, sha string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tr := range r.reports {
		if tr.r.Decision.Action != canary.ActRevert || tr.r.Commit.SHA == "" {
			continue
		}
		for _, g := range tr.r.Decision.Gates {
			for _, m := range g.Measurements {
				if m.Verdict == canary.VerdictFailed && (breach.IsZero() || m.At.Before(breach)) {
					breach = m.At
				}
			}
		}
		return breach, tr.at, tr.r.Commit.SHA
	}
	r.t.Fatal("no revert was committed")
	return
}

func waitReadyApp(t *testing.T, ctx context.Context, c *argocd.Client, app, sha string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var why string
	for time.Now().Before(deadline) {
		st, err := c.Status(ctx, app)
		if err == nil {
			var ok bool
			if ok, why = argocd.Ready(st, sha); ok {
				return
			}
		} else {
			why = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: commit %s not ready after %s: %s", app, sha, timeout, why)
}
