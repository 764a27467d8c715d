package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/argocd/argocdtest"
)

// `canarybot plan` prints the decision and the exact diff the next
// transition would commit, on a real repository, and pushes nothing: the
// remote's main is where it was, and running it again proposes the same.
func TestPlanIsADryRun(t *testing.T) {
	bare := gitopsRemote(t, map[string]string{
		".canarybot/plans/fraud.yaml": fleetPlan("fraud-detector", "{mode: kserve, kserve: {inferenceService: fraud-detector}}",
			"manifests/overlays/fraud-detector"),
	})
	argo := &argocdtest.Server{Head: func(string) (string, error) {
		out, err := exec.Command("git", "-C", bare, "rev-parse", "main").Output()
		return strings.TrimSpace(string(out)), err
	}}
	if err := argo.Start(); err != nil {
		t.Fatal(err)
	}
	defer argo.Stop()
	before := gitRun(t, bare, "rev-parse", "main")
	args := []string{"plan", "--repo", bare, "--dir", filepath.Join(t.TempDir(), "clone"), "--plan", ".canarybot/plans/fraud.yaml",
		"--prometheus", "http://127.0.0.1:1", "--argocd-server", argo.Addr(), "--argocd-plaintext"}
	for i := range 2 {
		out, stderr, err := runBinary(t, nil, args...)
		if err != nil {
			t.Fatalf("plan: %v\n%s%s", err, out, stderr)
		}
		for _, want := range []string{
			`fraud-detector: would commit "canary(fraud-detector): start 9.0.0 at 50%"; nothing was pushed`,
			"would commit on " + before[:12],
			"Canarybot-Action: start",
			"+++ b/.canarybot/state/fraud-detector.yaml",
			"+++ b/manifests/overlays/fraud-detector/canarybot/",
			"-  value: 100\n+  value: 50",
			"sha256:" + strings.Repeat("9", 64),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("run %d: output lacks %q:\n%s", i+1, want, out)
			}
		}
	}
	if after := gitRun(t, bare, "rev-parse", "main"); after != before {
		t.Fatalf("main moved from %s to %s: a dry run pushed", before, after)
	}
	if branches := gitRun(t, bare, "branch", "--list"); strings.Count(branches, "\n") != 0 {
		t.Fatalf("branches on the remote: %q", branches)
	}
}
