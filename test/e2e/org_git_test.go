//go:build e2e

package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gh "github.com/google/go-github/v60/github"

	canarybot "github.com/canarybot/canarybot"
	"github.com/canarybot/canarybot/internal/fakegithub"
	"github.com/canarybot/canarybot/pkg/appserver"
	"github.com/canarybot/canarybot/pkg/canary"
)

// The overlays of this repository's manifests/ that the plans of
// TestOrgServesEveryInstallationOnTheRealStack drive, by traffic mode.
const (
	gatewayOverlay = "manifests/overlays/qwen"
	kserveOverlay  = "manifests/overlays/fraud-detector"
	gatewayTraffic = "{mode: gateway, gateway: {httpRoute: qwen, stable: {inferenceService: qwen-stable, service: qwen-stable-predictor}, " +
		"canary: {inferenceService: qwen-canary, service: qwen-canary-predictor}}}"
)

func kserveTraffic(isvc string) string {
	return "{mode: kserve, kserve: {inferenceService: " + isvc + "}}"
}

// orgCandidate is plan's static candidate: no registry is needed.
func orgCandidate(plan string) string {
	return "oci://ghcr.io/acme/" + plan + "@sha256:" + strings.Repeat("9", 64)
}

// orgPlan is a plan of the organisation: 50%, with approval a reviewer's
// approval, then all traffic.
func orgPlan(name, traffic, overlay, app string, approval bool) string {
	steps := "  - setWeight: 50\n"
	if approval {
		steps += "  - pause: {untilApproved: true}\n"
	}
	return `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: ` + name + `}
spec:
  model:
    name: ` + name + `
    source: {static: {uri: "` + orgCandidate(name) + `", version: "9.0.0"}}
  traffic: ` + traffic + `
  overlay: ` + overlay + `
  argocd: {application: ` + app + `, syncTimeout: 2m}
  steps:
` + steps + "  - setWeight: 100\n"
}

// manifestsIn is this repository's manifests/ with every object moved to
// namespace ns (so that three repositories' copies do not collide in one
// cluster), its paths and contents passed through edit.
func manifestsIn(t *testing.T, ns string, edit func(string) string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := fs.WalkDir(canarybot.Manifests, "manifests", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := canarybot.Manifests.ReadFile(p)
		if err != nil {
			return err
		}
		files[edit(p)] = edit(strings.ReplaceAll(string(b), "namespace: models", "namespace: "+ns))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// seedOrgRepo creates r on the fake GitHub with the manifests and its two
// plans, each waiting for a reviewer at 50%.
func seedOrgRepo(t *testing.T, g *fakegithub.Server, r orgRepo) {
	t.Helper()
	files := manifestsIn(t, r.ns, func(s string) string { return s })
	files[".canarybot/plans/"+r.plans[0]+".yaml"] = orgPlan(r.plans[0], gatewayTraffic, gatewayOverlay, r.app(r.plans[0]), true)
	files[".canarybot/plans/"+r.plans[1]+".yaml"] = orgPlan(r.plans[1], kserveTraffic("fraud-detector"), kserveOverlay,
		r.app(r.plans[1]), true)
	dir := t.TempDir()
	writeFiles(t, dir, files)
	g.CreateRepo(r.owner, r.name, "main", dir)
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		if err := writeFile(filepath.Join(dir, filepath.FromSlash(p)), []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
}

// humanGit runs the git CLI as a person, with no user configuration.
func humanGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+filepath.Join(home, "gitconfig"),
		"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com", "GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// humanPush lands files on owner/name's main as login pushing over the
// fake's smart HTTP with its personal token (so GitHub sends a push
// webhook), retrying when canarybot pushed meanwhile; it returns the new
// head.
func humanPush(t *testing.T, g *fakegithub.Server, login, token, owner, name, msg string, files map[string]string) string {
	t.Helper()
	remote := strings.Replace(g.CloneURL(owner, name), "://", "://"+login+":"+token+"@", 1)
	for attempt := 0; ; attempt++ {
		work := filepath.Join(t.TempDir(), "work")
		humanGit(t, t.TempDir(), "clone", "--quiet", remote, work)
		writeFiles(t, work, files)
		humanGit(t, work, "add", "-A")
		humanGit(t, work, "commit", "--quiet", "-m", msg)
		cmd := exec.Command("git", "push", "--quiet", "origin", "HEAD:refs/heads/main")
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		if err == nil {
			return humanGit(t, work, "rev-parse", "HEAD")
		}
		if attempt >= 5 {
			t.Fatalf("%s's push to %s/%s: %v\n%s", login, owner, name, err, out)
		}
	}
}

// orgState reads a plan's state on a bare repository's main, or nil.
func orgState(bare, plan string) *canary.RolloutState {
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

// orgTransitions counts, per "plan/action/step", the commits on a bare
// repository's main that carry canarybot's trailers.
func orgTransitions(t *testing.T, bare string) map[string]int {
	t.Helper()
	out, err := exec.Command("git", "-C", bare, "log", "--format=%(trailers:key=Canarybot-Plan,valueonly,separator=)/"+
		"%(trailers:key=Canarybot-Action,valueonly,separator=)/%(trailers:key=Canarybot-Step,valueonly,separator=)", "main").Output()
	if err != nil {
		t.Fatalf("git log in %s: %v", bare, err)
	}
	counts := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		if line != "" && line != "//" {
			counts[line]++
		}
	}
	return counts
}

// approvalPR is the number of plan's open approval PR, or 0.
func approvalPR(g *fakegithub.Server, owner, name, plan string) int {
	for n := 1; g.PR(owner, name, n) != nil; n++ {
		pr := g.PR(owner, name, n)
		if pr.GetState() == "open" && strings.HasPrefix(pr.GetHead().GetRef(), "canarybot/"+plan+"/") &&
			strings.Contains(pr.GetBody(), "waits for approval") {
			return n
		}
	}
	return 0
}

// plansCheck is the completed canarybot/plans check run on head of
// owner/name, as the fake's check_run deliveries carry it, or nil.
func plansCheck(t *testing.T, g *fakegithub.Server, owner, name, head string) *gh.CheckRun {
	t.Helper()
	for _, d := range g.Deliveries() {
		if d.Event != "check_run" || d.Action != "completed" {
			continue
		}
		var ev gh.CheckRunEvent
		if err := json.Unmarshal(d.Body, &ev); err != nil {
			t.Fatalf("check_run delivery %s: %v", d.ID, err)
		}
		cr := ev.GetCheckRun()
		if cr.GetName() == appserver.PlansCheck && cr.GetHeadSHA() == head &&
			strings.EqualFold(ev.GetRepo().GetFullName(), owner+"/"+name) {
			return cr
		}
	}
	return nil
}
