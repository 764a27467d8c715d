//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canarybot/canarybot/internal/e2e/traffic"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// TestKill9ResumesWithoutDuplicateSteps runs the real binary
// (`canarybot reconcile`), kills it with SIGKILL right after its first
// transition, restarts it on the same clone, and checks that the rollout
// finishes with every transition committed exactly once: driving one
// --plan, and driving every plan the repository holds (fleet mode, with
// the plans directory moved by .canarybot/config.yaml).
func TestKill9ResumesWithoutDuplicateSteps(t *testing.T) {
	t.Run("plan", func(t *testing.T) { kill9Resumes(t, false) })
	t.Run("fleet", func(t *testing.T) { kill9Resumes(t, true) })
}

func kill9Resumes(t *testing.T, fleet bool) {
	bin, err := filepath.Abs("../../bin/canarybot")
	if err != nil || !isExecutable(bin) {
		t.Fatalf("%s missing: `make e2e` builds it first (make build)", bin)
	}
	r, _ := newRollout(t, canary.ModeGateway)
	dir := filepath.Join(t.TempDir(), "bot")
	args := []string{"reconcile", "--repo", r.bare, "--dir", dir, "--plan", "plans/qwen.yaml"}
	if fleet {
		args = []string{"reconcile", "--repo", r.bare, "--dir", dir}
		r.humanChange("plans live in plans/", map[string][]byte{canary.ConfigPath: []byte(
			"apiVersion: canarybot.dev/v1alpha1\nkind: RepositoryConfig\nspec: {plansDir: plans}\n")})
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, append(args, "--prometheus", r.s.Prometheus, "--argocd-server", r.s.ArgoCD, "--argocd-plaintext",
			"--auto-approve", "--registry-insecure", "--poll", "2s", "--log-level", "info")...)
		cmd.Env = append(os.Environ(), "ARGOCD_AUTH_TOKEN=e2e")
		logf, err := os.Create(filepath.Join(r.s.Dir, "logs", fmt.Sprintf("canarybot-%d.log", time.Now().UnixNano())))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	v2 := r.push("2.0.0")
	r.applier.Register(v2.Location(), traffic.Model{Tag: "2.0.0", Behaviour: good()})
	first := start()
	r.eventually("canarybot's first transition", 2*time.Minute, func() bool { return len(r.transitions()) >= 1 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	t.Logf("killed canarybot with SIGKILL after %v", r.transitions())
	second := start()
	defer func() { _ = second.Process.Signal(syscall.SIGKILL); _ = second.Wait() }()
	r.eventually("v2 promoted after the restart", 4*time.Minute, func() bool {
		st := r.stateFromGit()
		return st.Status.Phase == canary.PhasePromoted && st.Status.Stable.URI == v2.URI
	})
	got := strings.Join(r.transitions(), " ")
	if want := "start/0 advance/1 advance/2 promote/2"; got != want {
		t.Fatalf("transitions in Git: %s, want each exactly once: %s", got, want)
	}
}

// humanChange commits files to the GitOps repo as a person would.
func (r *rollout) humanChange(subject string, files map[string][]byte) {
	r.t.Helper()
	human, err := gitops.Open(r.ctx, gitops.Options{URL: r.bare, Dir: filepath.Join(r.t.TempDir(), "human"),
		AuthorName: "Platform Team", AuthorEmail: "platform@example.com"})
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := human.Transact(r.ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
		return &canary.Change{Subject: subject, Files: files}, nil
	}); err != nil {
		r.t.Fatalf("%s: %v", subject, err)
	}
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode()&0o111 != 0
}

// transitions lists canarybot's commits in the bare repo, oldest first, as
// action/step.
func (r *rollout) transitions() []string {
	rd, err := gitops.OpenReadOnly(r.ctx, gitops.Options{URL: r.bare})
	if err != nil {
		r.t.Fatal(err)
	}
	log, err := rd.Log(r.ctx, "", 100)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for i := len(log) - 1; i >= 0; i-- {
		action, ok := log[i].Trailer(canary.TrailerAction)
		step, _ := log[i].Trailer(canary.TrailerStep)
		if ok {
			out = append(out, action+"/"+step)
		}
	}
	return out
}

func (r *rollout) stateFromGit() *canary.RolloutState {
	rd, err := gitops.OpenReadOnly(r.ctx, gitops.Options{URL: r.bare})
	if err != nil {
		r.t.Fatal(err)
	}
	st, err := rd.ReadState(r.ctx, "", r.planName())
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// TestBrokenManifestFailsTheSyncAndReverts: a person pushes a manifest the
// kube-apiserver refuses while v2 is in canary; Argo CD's sync fails, and
// canarybot reverts (the plan's onSyncFailure) with the reason.
func TestBrokenManifestFailsTheSyncAndReverts(t *testing.T) {
	r, _ := newRollout(t, canary.ModeGateway)
	eng := r.engine()
	go func() { _ = eng.Run(r.ctx) }()
	v2 := r.push("2.0.0")
	r.applier.Register(v2.Location(), traffic.Model{Tag: "2.0.0", Behaviour: good()})
	r.eventually("v2 in canary", 2*time.Minute, func() bool { return len(r.transitions()) >= 1 })

	human, err := gitops.Open(r.ctx, gitops.Options{URL: r.bare, Dir: filepath.Join(t.TempDir(), "human"),
		AuthorName: "Platform Team", AuthorEmail: "platform@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = human.Transact(r.ctx, func(_ context.Context, tr canary.Tree) (*canary.Change, error) {
		k, err := fs.ReadFile(tr.FS, "manifests/base/qwen/kustomization.yaml")
		if err != nil {
			return nil, err
		}
		return &canary.Change{Subject: "add model config (with a name Kubernetes refuses)", Files: map[string][]byte{
			"manifests/base/qwen/kustomization.yaml": append(k, []byte("  - bad-configmap.yaml\n")...),
			"manifests/base/qwen/bad-configmap.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\ndata: {a: b}\n"),
		}}, nil
	})
	if err != nil {
		t.Fatalf("push the broken manifest: %v", err)
	}
	r.eventually("a revert for the failed sync", 90*time.Second, func() bool {
		st := r.stateFromGit()
		return st.Status.Phase == canary.PhaseReverted && st.Status.IsFailed(v2.URI)
	})
	st := r.stateFromGit()
	if !strings.Contains(st.Status.Reason, "sync failed") {
		t.Fatalf("reverted for %q, want the failed sync named", st.Status.Reason)
	}
	t.Logf("reverted: %s", st.Status.Reason)
}
