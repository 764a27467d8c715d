package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/argocd/argocdtest"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// replicaPlans are n kserve plans, each with its own copy of the
// repository's fraud-detector base and overlay.
func replicaPlans(t *testing.T, n int) (map[string]string, []string) {
	t.Helper()
	files := map[string]string{}
	var names []string
	for i := range n {
		name := fmt.Sprintf("model-%02d", i)
		names = append(names, name)
		for _, dir := range []string{"manifests/base/", "manifests/overlays/"} {
			root := "../../" + dir + "fraud-detector"
			err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				rel := strings.ReplaceAll(strings.TrimPrefix(filepath.ToSlash(p), root), "fraud-detector", name)
				files[dir+name+rel] = strings.ReplaceAll(string(b), "fraud-detector", name)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		files[".canarybot/plans/"+name+".yaml"] = fleetPlan(name, "{mode: kserve, kserve: {inferenceService: "+name+"}}",
			"manifests/overlays/"+name)
	}
	return files, names
}

// Two `canarybot reconcile` processes serve the same repository, both
// active, with no lock: the push is the compare-and-swap. One is killed
// with SIGKILL mid-run; the other finishes every rollout. Every plan is
// promoted, each transition committed exactly once, and the branch, which
// refuses non-fast-forward updates, only ever moved forward.
func TestTwoReconcileReplicasOneKilled(t *testing.T) {
	files, names := replicaPlans(t, 10)
	bare := gitopsRemote(t, files)
	gitRun(t, bare, "config", "receive.denyNonFastForwards", "true")
	gitRun(t, bare, "config", "core.logAllRefUpdates", "always")
	argo := &argocdtest.Server{Head: func(string) (string, error) {
		out, err := gitTry(bare, "rev-parse", "main")
		return strings.TrimSpace(out), err
	}}
	if err := argo.Start(); err != nil {
		t.Fatal(err)
	}
	defer argo.Stop()
	want := len(names) * 3 // start, advance to 100%, promote
	var replicas []*exec.Cmd
	var logs []*syncBuffer
	for _, r := range []string{"a", "b"} {
		cmd := exec.Command(binPath, "reconcile", "--repo", bare, "--dir", filepath.Join(t.TempDir(), r),
			"--prometheus", "http://127.0.0.1:1", "--argocd-server", argo.Addr(), "--argocd-plaintext",
			"--poll", "1s", "--min-poll", "100ms", "--workers", "4", "--log-level", "debug")
		logs = append(logs, &syncBuffer{})
		cmd.Stderr = logs[len(logs)-1]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		replicas = append(replicas, cmd)
	}
	killed := waitTransitions(t, bare, want/3, want)
	if err := replicas[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := replicas[0].Wait()
	if ws, ok := replicas[0].ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("replica a: %v, want killed by SIGKILL", err)
	}
	t.Logf("replica a SIGKILLed with %d of %d transitions committed", killed, want)
	waitPromotedPlans(t, bare, names, logs[1])
	if err := replicas[1].Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := replicas[1].Wait(); err != nil {
		t.Errorf("replica b: SIGTERM gave %v, want exit 0\n%s", err, logs[1].String())
	}
	checkEachTransitionOnce(t, bare, want)
	checkFastForwardOnly(t, bare)
	for i, l := range logs {
		t.Logf("replica %c pushed %d times", 'a'+i, strings.Count(l.String(), "msg=pushed"))
	}
}

// gitTry runs the git CLI in dir and returns its output, or an error.
func gitTry(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.Output()
	return string(out), err
}

// transitionKeys are the plan/action/step keys of the transition commits on
// main, with how many commits carry each.
func transitionKeys(ctx context.Context, bare string) (map[string]int, error) {
	cmd := exec.CommandContext(ctx, "git", "log", "--format=%B%x1e", "main")
	cmd.Dir = bare
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	keys := map[string]int{}
	for _, msg := range strings.Split(string(out), "\x1e") {
		c := gitops.Commit{Trailers: gitops.ParseTrailers(strings.TrimSpace(msg))}
		if plan, ok := c.Trailer(canary.TrailerPlan); ok {
			action, _ := c.Trailer(canary.TrailerAction)
			step, _ := c.Trailer(canary.TrailerStep)
			keys[plan+"/"+action+"/"+step]++
		}
	}
	return keys, nil
}

// waitTransitions waits for at least n transition commits, and returns
// how many there are (fewer than want: the kill is mid-run).
func waitTransitions(t *testing.T, bare string, n, want int) int {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		keys, err := transitionKeys(context.Background(), bare)
		total := 0
		for _, c := range keys {
			total += c
		}
		if err == nil && total >= n {
			if total >= want {
				t.Fatalf("every transition committed before the kill: %d", total)
			}
			return total
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("fewer than %d transitions after 2 minutes", n)
	return 0
}

// waitPromotedPlans waits until every plan's state on main is promoted.
func waitPromotedPlans(t *testing.T, bare string, names []string, log *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		done := 0
		for _, name := range names {
			out, err := gitTry(bare, "show", "main:"+canary.StatePath(name))
			if err != nil {
				continue
			}
			if st, err := canary.ParseState([]byte(out)); err == nil && st.Status.Phase == canary.PhasePromoted {
				done++
			}
		}
		if done == len(names) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d plans promoted after 3 minutes\n%s", done, len(names), log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkEachTransitionOnce expects want distinct transitions on main, each
// committed once.
func checkEachTransitionOnce(t *testing.T, bare string, want int) {
	t.Helper()
	keys, err := transitionKeys(context.Background(), bare)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != want {
		t.Errorf("%d distinct transitions, want %d: %v", len(keys), want, keys)
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("transition %s committed %d times", k, n)
		}
	}
}

// checkFastForwardOnly reads main's reflog in the bare repository: every
// update's old head is an ancestor of its new one.
func checkFastForwardOnly(t *testing.T, bare string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bare, "logs", "refs", "heads", "main"))
	if err != nil {
		t.Fatalf("main's reflog: %v", err)
	}
	updates := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.Trim(f[0], "0") == "" {
			continue
		}
		updates++
		if _, err := gitTry(bare, "merge-base", "--is-ancestor", f[0], f[1]); err != nil {
			t.Errorf("main moved from %s to %s, not a fast-forward", f[0], f[1])
		}
	}
	if updates == 0 {
		t.Error("no update of main in its reflog")
	}
}
