//go:build e2e

// Package e2e is canarybot's end-to-end suite against a real stack on
// loopback: etcd, kube-apiserver, Redis and Argo CD built from the Go module
// proxy (scripts/e2e-tools.sh), driven through Argo CD's real apiclient.
// Run it with `make e2e`.
package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/internal/e2e/stack"
	"github.com/canarybot/canarybot/pkg/argocd"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// startStack starts the stack, or skips when the binaries are not built
// (fails instead under CANARYBOT_E2E_REQUIRE=1, as `make e2e` sets).
func startStack(t *testing.T) *stack.Stack {
	t.Helper()
	tools, err := stack.FindTools(filepath.SplitList(os.Getenv("CANARYBOT_E2E_TOOLS")))
	if err != nil {
		if os.Getenv("CANARYBOT_E2E_REQUIRE") == "1" {
			t.Fatal(err)
		}
		t.Skipf("%v; `make e2e` builds them", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := stack.Start(ctx, stack.Options{Dir: t.TempDir(), Tools: tools, Log: log,
		ArgoCDCRDs: filepath.Join(moduleDir(t, "github.com/argoproj/argo-cd/v2", false), "manifests", "crds"),
		CRDs: []string{
			filepath.Join(moduleDir(t, "github.com/kserve/kserve@v0.15.2", true), "config/crd/full/serving.kserve.io_inferenceservices.yaml"),
			// LLMInferenceService (v1alpha1 and v1alpha2): traffic mode llmisvc.
			filepath.Join(moduleDir(t, "github.com/kserve/kserve@v0.19.0", true), "config/crd/full/llmisvc/serving.kserve.io_llminferenceservices.yaml"),
			filepath.Join(moduleDir(t, "sigs.k8s.io/gateway-api@v1.3.0", true), "config/crd/standard"),
		},
		// The health check the repository ships for LLMInferenceService.
		ArgoCDConfig: []string{filepath.Join("..", "..", "manifests", "argocd", "llminferenceservice-health.yaml")},
	})
	if err != nil {
		t.Fatalf("start the stack: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.Logs(40))
		}
		s.Stop()
	})
	return s
}

// moduleDir finds a module in the module cache: one of this module's
// dependencies, or (download) any module@version from the proxy.
func moduleDir(t *testing.T, mod string, download bool) string {
	t.Helper()
	args := []string{"list", "-m", "-f", "{{.Dir}}", mod}
	if download {
		args = []string{"mod", "download", "-json", mod}
	}
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	if !download {
		return strings.TrimSpace(string(out))
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download %s: %s", mod, out)
	}
	return m.Dir
}

// A commit pushed to the bare repo is synced by the real Argo CD, and
// pkg/argocd's Ready sees exactly that commit through the real apiclient.
func TestArgoCDSyncsTheExactCommit(t *testing.T) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bare := filepath.Join(t.TempDir(), "repo.git")
	human := seedConfigMapRepo(t, ctx, bare)
	if err := s.Application(ctx, "demo", bare, "app", "e2e"); err != nil {
		t.Fatal(err)
	}
	client, err := argocd.NewClient(argocd.ClientOptions{Server: s.ArgoCD, PlainText: true, Token: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	first, _ := human.Head(ctx)
	waitReady(t, ctx, client, first, 90*time.Second)

	res, err := human.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
		return &canary.Change{Subject: "bump", Files: map[string][]byte{"app/configmap.yaml": []byte(configMap("2"))}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pushed := time.Now()
	if err := client.Refresh(ctx, "demo"); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	waitReady(t, ctx, client, res.SHA, 60*time.Second)
	t.Logf("push → Argo CD synced and healthy at that commit: %s", time.Since(pushed).Round(10*time.Millisecond))
	if out, err := s.Kubectl(ctx, "", "get", "configmap", "model", "-n", "e2e", "-o", "jsonpath={.data.version}"); err != nil || out != "2" {
		t.Fatalf("live ConfigMap version %q (%v), want 2", out, err)
	}
}

func waitReady(t *testing.T, ctx context.Context, c *argocd.Client, sha string, timeout time.Duration) {
	t.Helper()
	waitReadyApp(t, ctx, c, "demo", sha, timeout)
}

func configMap(version string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: model}\ndata: {version: \"" + version + "\"}\n"
}

func seedConfigMapRepo(t *testing.T, ctx context.Context, bare string) *gitops.Repo {
	t.Helper()
	seed := t.TempDir()
	for p, c := range map[string]string{"app/kustomization.yaml": "resources: [configmap.yaml]\n", "app/configmap.yaml": configMap("1")} {
		if err := writeFile(filepath.Join(seed, p), []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	initBare(t, bare, seed)
	r, err := gitops.Open(ctx, gitops.Options{URL: bare, Dir: filepath.Join(t.TempDir(), "human"), AuthorName: "e2e", AuthorEmail: "e2e@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// initBare makes bare a repository whose main branch holds seed's files.
func initBare(t *testing.T, bare, seed string) {
	t.Helper()
	if out, err := exec.Command("git", "init", "--bare", "-b", "main", bare).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	for _, args := range [][]string{{"init", "-b", "main"}, {"add", "."}, {"-c", "user.name=e2e", "-c", "user.email=e2e@example.com", "commit", "-m", "seed"},
		{"push", bare, "main"}} {
		if out, err := exec.Command("git", append([]string{"-C", seed}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
}
