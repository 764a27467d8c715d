// Package e2e runs canarybot's GitHub App end to end against the faithful
// fake GitHub (real bare git repos behind a REST API and git smart HTTP),
// go-containerregistry's registry, the real Prometheus binary and the local
// Argo CD stand-in: registry webhook → PR with evidence → approval webhook
// → merge → next step → failing gate → revert PR merged.
package e2e

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/prometheus/client_golang/prometheus"

	canarybot "github.com/canarybot/canarybot"
	"github.com/canarybot/canarybot/internal/fakegithub"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/kustomize"
	"github.com/canarybot/canarybot/pkg/promserver"
	"github.com/canarybot/canarybot/pkg/registry/oci"
)

const (
	owner, repoName = "acme", "gitops"
	planPath        = "plans/qwen.yaml"
	secret          = "e2e-webhook-secret"
)

// planYAML: 20% canary, a quality gate, a step that waits for approval,
// then all traffic.
func planYAML(registryRepo string) string {
	return fmt.Sprintf(`apiVersion: canarybot.dev/v1alpha1
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
  argocd: {application: qwen, syncTimeout: 1m}
  steps:
  - setWeight: 20
  - analysis: {gates: [answer-quality]}
  - pause: {untilApproved: true}
  - setWeight: 100
  gates:
  - name: answer-quality
    threshold:
      query: max(model_answer_quality{role="canary"})
      successCondition: result >= 0.9
      interval: 1s
      count: 2
  rollback: {onFailure: revert, onInconclusive: hold, onError: hold, onSyncFailure: revert}
`, registryRepo)
}

// world is everything the test runs.
type world struct {
	t       *testing.T
	ctx     context.Context
	gh      *fakegithub.Server
	reg     *httptest.Server
	regRepo string
	regOpts []oci.Option
	quality atomic.Value // float64, the canary's answer quality Prometheus scrapes
	prom    *promserver.Server
	botURL  string
	metrics *prometheus.Registry
	mu      sync.Mutex
	reports []canary.Report
	log     *slog.Logger
	botRepo *gitops.Repo
	cancel  context.CancelFunc
	// running counts the bot's goroutines, which must stop before the
	// test's temporary directories are removed.
	running sync.WaitGroup
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	w := &world{t: t, ctx: ctx, cancel: cancel, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if testing.Verbose() {
		w.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	w.quality.Store(0.97)
	w.reg = httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(w.reg.Close)
	w.regRepo = strings.TrimPrefix(w.reg.URL, "http://") + "/acme/qwen"
	w.regOpts = []oci.Option{oci.WithInsecure()}
	w.gh = fakegithub.New(t, fakegithub.Options{WebhookSecret: secret, Logger: w.log})
	w.startPrometheus()
	return w
}

// startPrometheus runs the real Prometheus scraping the canary's answer
// quality from a real /metrics endpoint.
func (w *world) startPrometheus() {
	t := w.t
	m := http.NewServeMux()
	m.HandleFunc("/metrics", func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(rw, "# TYPE model_answer_quality gauge\nmodel_answer_quality{role=\"canary\"} %g\n", w.quality.Load().(float64))
	})
	target := httptest.NewServer(m)
	t.Cleanup(target.Close)
	prom, err := promserver.Start(w.ctx, promserver.Options{ScrapeInterval: 500 * time.Millisecond,
		Targets: []promserver.Target{{Addr: strings.TrimPrefix(target.URL, "http://")}}, Logger: w.log})
	if err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() { _ = prom.Stop() })
	w.prom = prom
	// The first scrape lands seconds after start; gates must not read a
	// Prometheus that has not seen the target yet.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(prom.URL() + "/api/v1/query?query=model_answer_quality")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if strings.Contains(string(b), `"value"`) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus has no sample of model_answer_quality after 30s:\n%s", prom.Output())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// seed creates the GitOps repo on the fake GitHub with the manifests and
// the plan, and bootstraps stable v1 as a human would, over git.
func (w *world) seed(v1 canary.Artifact) {
	t := w.t
	dir := t.TempDir()
	err := fs.WalkDir(canarybot.Manifests, "manifests/overlays/qwen", copyTo(dir))
	if err == nil {
		err = fs.WalkDir(canarybot.Manifests, "manifests/base/qwen", copyTo(dir))
	}
	if err == nil {
		err = write(filepath.Join(dir, planPath), []byte(planYAML(w.regRepo)))
	}
	if err != nil {
		t.Fatal(err)
	}
	w.gh.CreateRepo(owner, repoName, "main", dir)
	human, err := gitops.Open(w.ctx, gitops.Options{URL: w.gh.RepoPath(owner, repoName), Dir: filepath.Join(t.TempDir(), "human"),
		AuthorName: "Platform Team", AuthorEmail: "platform@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	r := kustomize.NewRenderer(kustomize.NewBuilder())
	_, err = human.Transact(w.ctx, func(ctx context.Context, tr canary.Tree) (*canary.Change, error) {
		plan, err := canary.ReadPlan(tr, planPath)
		if err != nil {
			return nil, err
		}
		st := canary.NewState(plan.Metadata.Name, v1)
		files, err := r.Render(ctx, tr, plan, canary.DesiredOf(st))
		if err != nil {
			return nil, err
		}
		if files[canary.StatePath("qwen")], err = canary.MarshalState(st); err != nil {
			return nil, err
		}
		return &canary.Change{Files: files, Subject: "adopt v1 as stable"}, nil
	})
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
}

func copyTo(dir string) fs.WalkDirFunc {
	return func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := canarybot.Manifests.ReadFile(p)
		if err != nil {
			return err
		}
		return write(filepath.Join(dir, filepath.FromSlash(p)), b)
	}
}

func write(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// push publishes a model version and returns its pinned artifact.
func (w *world) push(tag string) canary.Artifact {
	w.t.Helper()
	digest, err := oci.Push(w.ctx, w.regRepo, tag, map[string][]byte{"model.json": []byte(`{"version":"` + tag + `"}`)}, w.regOpts...)
	if err != nil {
		w.t.Fatalf("push %s: %v", tag, err)
	}
	return canary.Artifact{URI: "oci://" + w.regRepo + "@" + digest, Version: tag}
}
