package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canarybot/canarybot/internal/fakegithub"
	"github.com/canarybot/canarybot/pkg/argocd/argocdtest"
	"github.com/canarybot/canarybot/pkg/canary"
)

// approvalPlan: 50%, a reviewer's approval, then all traffic.
func approvalPlan(name, traffic, overlay, app string) string {
	return strings.Replace(strings.Replace(fleetPlan(name, traffic, overlay), "argocd: {application: "+name+"}",
		"argocd: {application: "+app+"}", 1), "  - setWeight: 100\n", "  - pause: {untilApproved: true}\n  - setWeight: 100\n", 1)
}

// orgRepo seeds owner/name on the fake GitHub with this repository's
// manifests and two plans: a gateway one and a KServe one, each waiting
// for a reviewer at 50%. Application names carry the repository's.
func orgRepo(t *testing.T, gh *fakegithub.Server, owner, name string, plans [2]string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "manifests"), os.DirFS("../../manifests")); err != nil {
		t.Fatal(err)
	}
	gateway := "{mode: gateway, gateway: {httpRoute: qwen, stable: {inferenceService: qwen-stable, service: qwen-stable-predictor}, " +
		"canary: {inferenceService: qwen-canary, service: qwen-canary-predictor}}}"
	files := map[string]string{
		".canarybot/plans/" + plans[0] + ".yaml": approvalPlan(plans[0], gateway, "manifests/overlays/qwen", name+"-"+plans[0]),
		".canarybot/plans/" + plans[1] + ".yaml": approvalPlan(plans[1], "{mode: kserve, kserve: {inferenceService: fraud-detector}}",
			"manifests/overlays/fraud-detector", name+"-"+plans[1]),
	}
	for p, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gh.CreateRepo(owner, name, "main", dir)
}

// One `canarybot serve` process, as a GitHub App installed on two
// organisations, serves three repositories and six plans in both traffic
// modes through one webhook URL: every rollout waits at 50% for a
// reviewer; an approval's webhook wakes that plan alone (the poll is an
// hour), which merges and promotes while its neighbour stays put; every
// transition lands once.
func TestServeOneAppForAWholeOrganisation(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gh := fakegithub.New(t, fakegithub.Options{WebhookSecret: "org-secret", Logger: log})
	repos := map[string][2]string{"acme/platform": {"qwen", "fraud"}, "acme/ml": {"llama", "ranker"}, "globex/gitops": {"mistral", "embed"}}
	for full, plans := range repos {
		owner, name, _ := strings.Cut(full, "/")
		orgRepo(t, gh, owner, name, plans)
	}
	gh.CreateRepo("acme", "docs", "main", t.TempDir())
	gh.AddInstallation("acme")
	gh.AddInstallation("globex")
	reviewer := "ana"
	gh.AddUser(reviewer, fakegithub.PermWrite)

	bareOf := map[string]string{} // Argo CD application → bare repository
	for full, plans := range repos {
		owner, name, _ := strings.Cut(full, "/")
		for _, p := range plans {
			bareOf[name+"-"+p] = gh.RepoPath(owner, name)
		}
	}
	argo := &argocdtest.Server{Head: func(app string) (string, error) {
		bare, ok := bareOf[app]
		if !ok {
			return "", fmt.Errorf("no application %s", app)
		}
		out, err := exec.Command("git", "-C", bare, "rev-parse", "main").Output()
		return strings.TrimSpace(string(out)), err
	}}
	if err := argo.Start(); err != nil {
		t.Fatal(err)
	}
	defer argo.Stop()

	addr, ops := freeAddr(t), freeAddr(t)
	gh.SetWebhookURL("http://" + addr + "/webhooks/github")
	key := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(key, gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "serve", "--github-api-url", gh.URL()+"/", "--github-app-id", fmt.Sprint(gh.AppID()),
		"--github-private-key-file", key, "--dir", t.TempDir(), "--listen", addr, "--metrics-listen", ops, "--poll", "1h", "--min-poll", "200ms",
		"--prometheus", "http://127.0.0.1:1", "--argocd-server", argo.Addr(), "--argocd-plaintext", "--log-level", "debug")
	cmd.Env = append(os.Environ(), "GITHUB_WEBHOOK_SECRET=org-secret")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("serve's log:\n%s", tail(stderr.String(), 60))
		}
	}()

	// Every plan opens its approval PR at 50%.
	waitUntil(t, "six rollouts at 50% awaiting approval", 2*time.Minute, func() bool {
		for full, plans := range repos {
			owner, name, _ := strings.Cut(full, "/")
			for _, p := range plans {
				if st := stateOn(gh.RepoPath(owner, name), p); st == nil || st.Status.Weight != 50 ||
					approvalPR(gh, owner, name, p) == 0 {
					return false
				}
			}
		}
		return true
	})
	time.Sleep(time.Second) // the ticks that opened the PRs settle
	if strings.Contains(stderr.String(), "serving repository\" repo=acme/docs") {
		t.Error("acme/docs has no .canarybot/ and was served")
	}
	for full := range repos {
		if !strings.Contains(stderr.String(), "repo="+full) {
			t.Errorf("%s not served", full)
		}
	}

	// The approval of qwen's PR wakes qwen alone.
	ticksOf := func(plan string) int { return strings.Count(stderr.String(), "plan="+plan+" ") }
	fraudBefore := ticksOf("fraud")
	approve(t, gh, "acme", "platform", "qwen", reviewer)
	platform := gh.RepoPath("acme", "platform")
	waitUntil(t, "qwen promoted after its approval", time.Minute, func() bool {
		st := stateOn(platform, "qwen")
		return st != nil && st.Status.Phase == canary.PhasePromoted
	})
	time.Sleep(time.Second)
	if n := ticksOf("fraud"); n != fraudBefore {
		lines := strings.Split(stderr.String(), "\n")
		var about []string
		for _, l := range lines {
			if strings.Contains(l, "plan=fraud ") {
				about = append(about, l)
			}
		}
		t.Errorf("the approval of qwen's PR also woke fraud (%d log lines about it since):\n%s", n-fraudBefore,
			strings.Join(about[len(about)-(n-fraudBefore):], "\n"))
	}
	if st := stateOn(platform, "fraud"); st.Status.Weight != 50 {
		t.Errorf("fraud moved without its approval: weight %d", st.Status.Weight)
	}

	for full, plans := range repos {
		owner, name, _ := strings.Cut(full, "/")
		for _, p := range plans {
			if full != "acme/platform" || p != "qwen" {
				approve(t, gh, owner, name, p, reviewer)
			}
		}
	}
	for full, plans := range repos {
		owner, name, _ := strings.Cut(full, "/")
		bare := gh.RepoPath(owner, name)
		for _, p := range plans {
			waitUntil(t, p+" promoted", time.Minute, func() bool {
				st := stateOn(bare, p)
				return st != nil && st.Status.Phase == canary.PhasePromoted
			})
		}
		counts := trailerCounts(t, bare)
		for key, n := range counts {
			if n != 1 {
				t.Errorf("%s: transition %s committed %d times", full, key, n)
			}
		}
		if len(counts) != 4*len(plans) { // start, advance to the pause, advance, promote
			t.Errorf("%s: transitions %v, want 4 per plan", full, counts)
		}
	}

	// The status page at / on --metrics-listen shows every repository's
	// rollouts; the webhook port does not serve it.
	promoted := map[string]map[string]string{}
	for full, plans := range repos {
		promoted[full] = map[string]string{plans[0]: canary.PhasePromoted, plans[1]: canary.PhasePromoted}
	}
	waitUntil(t, "the status page to show every rollout promoted", 30*time.Second, func() bool {
		return phasesAre(pagePhases(t, "http://"+ops), promoted)
	})
	checkStatusPage(t, "http://"+ops, promoted)
	if resp, err := http.Get("http://" + addr + "/api/v1/rollouts"); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the webhook port serves the status API")
		}
	}
}

// approvalPR is the number of plan's open approval PR, or 0.
func approvalPR(gh *fakegithub.Server, owner, name, plan string) int {
	for n := 1; gh.PR(owner, name, n) != nil; n++ {
		pr := gh.PR(owner, name, n)
		if pr.GetState() == "open" && strings.HasPrefix(pr.GetHead().GetRef(), "canarybot/"+plan+"/") &&
			strings.Contains(pr.GetBody(), "waits for approval") {
			return n
		}
	}
	return 0
}

// approve approves plan's open approval PR as reviewer.
func approve(t *testing.T, gh *fakegithub.Server, owner, name, plan, reviewer string) {
	t.Helper()
	n := approvalPR(gh, owner, name, plan)
	if n == 0 {
		t.Fatalf("%s/%s has no open approval PR for %s", owner, name, plan)
	}
	if _, err := gh.Review(owner, name, n, reviewer, "APPROVE", "lgtm"); err != nil {
		t.Fatal(err)
	}
}

// trailerCounts counts, per "plan/action/step", the commits on main that
// carry canarybot's trailers.
func trailerCounts(t *testing.T, bare string) map[string]int {
	out := gitRun(t, bare, "log", "--format=%(trailers:key=Canarybot-Plan,valueonly,separator=)/"+
		"%(trailers:key=Canarybot-Action,valueonly,separator=)/%(trailers:key=Canarybot-Step,valueonly,separator=)", "main")
	counts := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		if line != "" && line != "//" {
			counts[line]++
		}
	}
	return counts
}

// freeAddr is a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stateOn reads a plan's state on a bare repository's main, or nil.
func stateOn(bare, plan string) *canary.RolloutState {
	out, err := exec.Command("git", "-C", bare, "show", "main:"+canary.StatePath(plan)).Output()
	if err != nil {
		return nil
	}
	st, err := canary.ParseState(out)
	if err != nil {
		return nil
	}
	return st
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
