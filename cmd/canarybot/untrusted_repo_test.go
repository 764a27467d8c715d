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
