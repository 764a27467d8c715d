package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReconcileRefusesSymlinkedPlans is the attack from issue 14: whoever
// can push to the GitOps repo commits a plan that is a symbolic link out of
// the clone. Before plans were read from Git objects, a link to /dev/zero
// made `reconcile --once` die out of memory, and a link to a file outside
// the repo was parsed. Now each is refused, quickly, with the reason.
func TestReconcileRefusesSymlinkedPlans(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "outside.yaml")
	if err := os.WriteFile(outside, []byte(retryPlan), 0o600); err != nil {
		t.Fatal(err)
	}
	bare := retryRemote(t, false)
	work := filepath.Join(t.TempDir(), "attacker")
	gitRun(t, filepath.Dir(work), "clone", "--quiet", bare, work)
	links := map[string]string{
		"plans/zero.yaml":    "../../../../../../../../../../dev/zero",
		"plans/outside.yaml": outside,
		"plans/up.yaml":      "fraud.yaml",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(work, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	gitRun(t, work, "add", "-A")
	gitRun(t, work, "commit", "--quiet", "-m", "links")
	gitRun(t, work, "push", "--quiet", "origin", "HEAD:main")

	for name := range links {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, binPath, "reconcile", "--once", "--repo", bare,
			"--dir", filepath.Join(t.TempDir(), "clone"), "--plan", name,
			"--prometheus", "http://127.0.0.1:1", "--argocd-server", "127.0.0.1:1", "--argocd-plaintext")
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut {
			t.Errorf("%s: err = %v (timed out: %v), want a refusal\n%s", name, err, timedOut, out)
		}
		if !strings.Contains(string(out), "symbolic link refused") || strings.Contains(string(out), "out of memory") {
			t.Errorf("%s: want the link refused by name:\n%s", name, out)
		}
	}
}

// Anyone who can reach --listen could wake the bot: without a registry
// token it refuses to start, unless told to accept unauthenticated
// notifications.
func TestReconcileListenNeedsARegistryToken(t *testing.T) {
	bare := retryRemote(t, false)
	base := []string{"reconcile", "--repo", bare, "--dir", t.TempDir(), "--prometheus", "http://127.0.0.1:1",
		"--argocd-server", "127.0.0.1:1", "--argocd-plaintext", "--listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		extra []string
		env   string
		want  string
	}{
		{nil, "", "--listen serves /hooks/registry, which needs a bearer token"},
		{[]string{"--registry-webhook-token-env", "HOOK_TOKEN"}, "", "--registry-webhook-token-env HOOK_TOKEN: the variable is empty"},
		// Past the token check, it gets as far as dialling Argo CD.
		{[]string{"--registry-webhook-token-env", "HOOK_TOKEN"}, "s3cret", "argocd"},
		{[]string{"--registry-webhook-insecure"}, "", "argocd"},
	} {
		cmd := exec.Command(binPath, append(base, tc.extra...)...)
		cmd.Env = append(os.Environ(), "HOOK_TOKEN="+tc.env)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: err %v, want %q in:\n%s", tc.extra, err, tc.want, out)
		}
	}
}
