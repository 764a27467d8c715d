package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/argocd/argocdtest"
	"github.com/canarybot/canarybot/pkg/canary"
)

// `canarybot pause|resume|promote|abort` record a person's request in Git,
// and `canarybot reconcile` carries each out once, on a real repository:
// the request commits carry who asked, a request the rollout cannot take
// is refused before anything is pushed, and the state records the last
// request carried out.
func TestControlsAreRecordedInGitAndCarriedOutOnce(t *testing.T) {
	plan := strings.Replace(fleetPlan("fraud-detector", "{mode: kserve, kserve: {inferenceService: fraud-detector}}",
		"manifests/overlays/fraud-detector"), "  - setWeight: 50\n  - setWeight: 100\n",
		"  - setWeight: 20\n  - pause: {duration: 1h}\n  - setWeight: 50\n", 1)
	bare := gitopsRemote(t, map[string]string{".canarybot/plans/fraud.yaml": plan})
	argo := &argocdtest.Server{Head: func(string) (string, error) {
		out, err := exec.Command("git", "-C", bare, "rev-parse", "main").Output()
		return strings.TrimSpace(string(out)), err
	}}
	if err := argo.Start(); err != nil {
		t.Fatal(err)
	}
	defer argo.Stop()
	dir := t.TempDir()
	reconcile := func(want string) {
		t.Helper()
		out, stderr, err := runBinary(t, nil, "reconcile", "--once", "--repo", bare, "--dir", filepath.Join(dir, "bot"),
			"--prometheus", "http://127.0.0.1:1", "--argocd-server", argo.Addr(), "--argocd-plaintext")
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("reconcile: want %q, got %v\n%s%s", want, err, out, stderr)
		}
	}
	control := func(verb, reason, want string) {
		t.Helper()
		before := gitRun(t, bare, "rev-parse", "main")
		out, stderr, err := runBinary(t, nil, verb, "--repo", bare, "--dir", filepath.Join(dir, "cli"),
			"--plan", "fraud-detector", "--by", "alice", "--reason", reason)
		refused := strings.HasPrefix(want, "refused: ")
		switch {
		case refused && (err == nil || !strings.Contains(stderr, strings.TrimPrefix(want, "refused: "))):
			t.Fatalf("%s: want a refusal saying %q, got %v\n%s%s", verb, want, err, out, stderr)
		case refused:
			if after := gitRun(t, bare, "rev-parse", "main"); after != before {
				t.Fatalf("%s was refused but main moved", verb)
			}
			return
		case err != nil || !strings.Contains(out, want):
			t.Fatalf("%s: want %q, got %v\n%s%s", verb, want, err, out, stderr)
		}
		trailers := gitRun(t, bare, "log", "-1", "--format=%(trailers)", "main")
		for _, w := range []string{"Canarybot-Plan: fraud-detector", "Canarybot-Request: " + verb, "Canarybot-Requested-By: alice"} {
			if !strings.Contains(trailers, w) {
				t.Errorf("%s commit lacks %q:\n%s", verb, w, trailers)
			}
		}
		if got := gitRun(t, bare, "diff-tree", "--no-commit-id", "--name-only", "-r", "main"); got != ".canarybot/requests/fraud-detector.yaml" {
			t.Errorf("%s commit changed %q, want only the request file", verb, got)
		}
	}

	reconcile("fraud-detector: start")
	control("promote", "skip it", "refused: promote lets a rollout past a pause or approval step")
	reconcile("fraud-detector: advance (weight 20% synced)")
	reconcile("fraud-detector: wait (pausing until")
	control("pause", "p99 looks odd", "fraud-detector: pause requested by alice")
	control("resume", "", "refused: only a paused rollout can be resumed")
	reconcile("fraud-detector: hold (paused: alice (p99 looks odd))")
	reconcile("fraud-detector: wait (held: paused: alice")
	control("promote", "", "refused: only")
	control("resume", "false alarm", "fraud-detector: resume requested by alice")
	reconcile("fraud-detector: advance (resumed by a person)")
	reconcile("fraud-detector: wait (pausing until")
	control("promote", "LGTM", "fraud-detector: promote requested by alice")
	reconcile("fraud-detector: advance (promoted by alice (LGTM))")
	control("abort", "bad answers in the golden set", "fraud-detector: abort requested by alice")
	reconcile("fraud-detector: revert (aborted: alice (bad answers in the golden set))")
	reconcile("fraud-detector: wait")
	control("abort", "", "refused: no rollout is in progress")

	st := readState(t, bare, "fraud-detector")
	if st.Status.Phase != canary.PhaseReverted || !strings.HasPrefix(st.Status.LastRequest, "abort-") {
		t.Errorf("state: %s, last request %q; want reverted by the abort", st.Status.Phase, st.Status.LastRequest)
	}
	actions := gitRun(t, bare, "log", "--reverse", "--format=%(trailers:key=Canarybot-Action,valueonly)%(trailers:key=Canarybot-Request,valueonly)", "main")
	want := "start\nadvance\npause\nhold\nresume\nadvance\npromote\nadvance\nabort\nrevert"
	if got := strings.Join(strings.Fields(actions), "\n"); got != want {
		t.Errorf("commits, oldest first:\n%s\nwant:\n%s", got, want)
	}
	if _, stderr, err := runBinary(t, nil, "pause", "--repo", bare, "--dir", filepath.Join(dir, "cli"), "--plan", "nope", "--by", "a"); err == nil ||
		!strings.Contains(stderr, `no plan named "nope"`) || !strings.Contains(stderr, "plans: fraud-detector") {
		t.Errorf("unknown plan: %v\n%s", err, stderr)
	}
}
