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
	"github.com/canarybot/canarybot/internal/gpusim"
	"github.com/canarybot/canarybot/internal/modelsim"
	"github.com/canarybot/canarybot/pkg/argocd"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/kustomize"
	"github.com/canarybot/canarybot/pkg/promserver"
	"github.com/canarybot/canarybot/pkg/registry/oci"
)

// planFor is the rollout plan in one traffic mode: 30% canary, a latency
// gate against stable, all traffic. withGPU adds a bake at 30% and a
// background Xid gate on the gpu-agent's metrics of each side's pods.
func planFor(mode, registryRepo string, withGPU bool) string {
	traffic := `traffic:
    mode: gateway
    gateway:
      httpRoute: qwen
      stable: {inferenceService: qwen-stable, service: qwen-stable-predictor}
      canary: {inferenceService: qwen-canary, service: qwen-canary-predictor}
  overlay: manifests/overlays/qwen`
	name := "qwen"
	if mode == canary.ModeKServe {
		name = "fraud-detector"
		traffic = `traffic:
    mode: kserve
    kserve: {inferenceService: fraud-detector}
  overlay: manifests/overlays/fraud-detector`
	}
	if mode == canary.ModeLLMISVC {
		name, traffic = "qwen-llm", llmisvcTrafficYAML
	}
	plan := fmt.Sprintf(`apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: %[1]s}
spec:
  model:
    name: %[1]s
    source: {oci: {repository: %[2]s, semver: ">=1.0.0"}}
  %[3]s
  argocd: {application: %[1]s, syncTimeout: 2m}
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
`, name, registryRepo, traffic)
	if withGPU {
		plan = gpuPlan(plan)
	}
	return plan
}

// rollout is one plan rolled out on the real stack: Git (a bare repo) →
// Argo CD → kube-apiserver → the KServe stand-in and the traffic loop →
// simulated model servers → Prometheus → canarybot's gates.
type rollout struct {
	t       *testing.T
	mode    string
	ctx     context.Context
	s       *stack.Stack
	bare    string
	regRepo string
	gpu     *gpusim.Node // nil without GPUs
	applier *traffic.Applier
	argo    *argocd.Client
	mu      sync.Mutex
	reports []timedReport

	// editPlan, when set, rewrites planFor's plan (routes_test.go).
	editPlan func(string) string
	// servers are the simulated stable and canary model servers.
	servers []*modelsim.Server
}

type timedReport struct {
	at time.Time
	r  canary.Report
}

func good() modelsim.Behaviour {
	return modelsim.Behaviour{ErrorRate: 0.001, LatencyMedian: 150 * time.Millisecond, LatencySigma: 0.3,
		TTFTMedian: 30 * time.Millisecond, TTFTSigma: 0.4, KVCacheUsage: 0.4, QueueDepth: 1}
}

// newRollout starts the stack, the registry with v1, the GitOps repo with
// v1 adopted, the Argo CD Application and the simulated cluster.
func newRollout(t *testing.T, mode string) (*rollout, canary.Artifact) {
	return startRollout(t, &rollout{t: t, mode: mode})
}

// startRollout is newRollout for a prepared rollout (with its GPU node).
func startRollout(t *testing.T, r *rollout) (*rollout, canary.Artifact) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	r.ctx, r.s = ctx, s
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	r.regRepo = strings.TrimPrefix(reg.URL, "http://") + "/acme/model"
	v1 := r.push("1.0.0")
	r.seed(v1)
	p := r.plan()
	if err := s.Application(ctx, p.Spec.ArgoCD.Application, r.bare, p.Spec.Overlay, "models"); err != nil {
		t.Fatal(err)
	}
	r.startCluster(v1)
	return r, v1
}

// TestRolloutOnTheRealStack, in both traffic modes: v2 is promoted; v3,
// 40% slower, is reverted, and Argo CD syncs the revert. It reports gate
// breach → revert pushed and revert pushed → synced.
func TestRolloutOnTheRealStack(t *testing.T) {
	for _, mode := range []string{canary.ModeGateway, canary.ModeKServe} {
		t.Run(mode, func(t *testing.T) {
			r, _ := newRollout(t, mode)
			eng := r.engine()
			go func() { _ = eng.Run(r.ctx) }()
			r.promoteV2()
			r.revertV3()
		})
	}
}

func (r *rollout) promoteV2() canary.Artifact {
	v2 := r.push("2.0.0")
	r.applier.Register(v2.Location(), traffic.Model{Tag: "2.0.0", Behaviour: good()})
	st := r.waitPhase(v2, canary.PhasePromoted, 4*time.Minute)
	r.t.Logf("v2 promoted: %s", st.Status.Reason)
	return v2
}

func (r *rollout) revertV3() {
	t, ctx := r.t, r.ctx
	slow := good()
	slow.LatencyMedian = 210 * time.Millisecond
	v3 := r.push("3.0.0")
	r.applier.Register(v3.Location(), traffic.Model{Tag: "3.0.0", Behaviour: slow})
	st := r.waitPhase(v3, canary.PhaseReverted, 4*time.Minute)
	breach, pushed, sha := r.revertTimes()
	app := r.plan().Spec.ArgoCD.Application
	waitReadyApp(t, ctx, r.argo, app, sha, 2*time.Minute)
	synced := time.Now()
	t.Logf("gate breach → revert commit pushed: %s", pushed.Sub(breach).Round(10*time.Millisecond))
	t.Logf("revert pushed → Argo CD synced and healthy: %s", synced.Sub(pushed).Round(10*time.Millisecond))
	v2 := st.Status.Stable
	if v2.Version != "2.0.0" {
		t.Fatalf("after the revert stable is %s, want v2", v2.URI)
	}
	r.eventually("the live split back on v2 alone", time.Minute, func() bool {
		live, err := traffic.Read(ctx, r.dyn(), traffic.Config{Namespace: "models", Traffic: r.plan().Spec.Traffic})
		return err == nil && live.CanaryPercent == 0 && live.StableURI == v2.Location()
	})
}

func (r *rollout) eventually(what string, timeout time.Duration, ok func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			r.mu.Lock()
			for _, tr := range r.reports[max(0, len(r.reports)-5):] {
				r.t.Logf("last ticks: %s %s", tr.r.Decision.Action, tr.r.Decision.Reason)
			}
			r.mu.Unlock()
			if r.argo != nil {
				st, err := r.argo.Status(r.ctx, r.plan().Spec.ArgoCD.Application)
				r.t.Logf("Argo CD: %+v %v", st, err)
			}
			r.t.Fatalf("no %s after %s", what, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (r *rollout) plan() *canary.CanaryPlan {
	p, err := canary.ParsePlan([]byte(r.planYAML()))
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// planYAML is the rollout's plan: planFor's, rewritten by editPlan.
func (r *rollout) planYAML() string {
	p := planFor(r.mode, r.regRepo, r.gpu != nil)
	if r.editPlan != nil {
		p = r.editPlan(p)
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
	name := r.planName()
	for _, root := range []string{"manifests/base/" + name, "manifests/overlays/" + name} {
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
	if err := writeFile(filepath.Join(dir, "plans/"+name+".yaml"), []byte(r.planYAML())); err != nil {
		t.Fatal(err)
	}
	initBare(t, r.bare, dir)
	human, err := gitops.Open(r.ctx, gitops.Options{URL: r.bare, Dir: filepath.Join(t.TempDir(), "human")})
	if err != nil {
		t.Fatal(err)
	}
	ren := kustomize.NewRenderer(kustomize.NewBuilder())
	if _, err := human.Transact(r.ctx, func(ctx context.Context, tr canary.Tree) (*canary.Change, error) {
		plan, err := canary.ReadPlan(tr, "plans/"+name+".yaml")
		if err != nil {
			return nil, err
		}
		st := canary.NewState(name, v1)
		files, err := ren.Render(ctx, tr, plan, canary.DesiredOf(st))
		if err != nil {
			return nil, err
		}
		files[canary.StatePath(name)], err = canary.MarshalState(st)
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

func (r *rollout) planName() string {
	switch r.mode {
	case canary.ModeKServe:
		return "fraud-detector"
	case canary.ModeLLMISVC:
		return "qwen-llm"
	}
	return "qwen"
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
	name := r.planName()
	var servers []*modelsim.Server
	for _, role := range []modelsim.Role{modelsim.RoleStable, modelsim.RoleCanary} {
		srv, err := modelsim.NewServer(modelsim.ServerConfig{ModelName: name, Version: "1.0.0", Role: role, Behaviour: good(), Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(ctx, "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		servers = append(servers, srv)
	}
	r.servers = servers
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
	load, err := modelsim.NewLoadGenerator(modelsim.LoadConfig{URL: router.URL() + "/v1/completions", RPS: 40, Model: name, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = load.Run(ctx) }()
	targets := []promserver.Target{{Addr: strings.TrimPrefix(servers[0].URL(), "http://")}, {Addr: strings.TrimPrefix(servers[1].URL(), "http://")}}
	if r.gpu != nil {
		targets = append(targets, promserver.Target{Addr: r.gpu.Addr()})
	}
	prom, err := promserver.Start(ctx, promserver.Options{ScrapeInterval: time.Second, Logger: log, Targets: targets})
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
		PlanPath: "plans/" + r.planName() + ".yaml", Repo: repo, Renderer: ren,
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
