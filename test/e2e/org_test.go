//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/canarybot/canarybot/internal/e2e/kservesim"
	"github.com/canarybot/canarybot/internal/e2e/stack"
	"github.com/canarybot/canarybot/internal/fakegithub"
	"github.com/canarybot/canarybot/pkg/argocd"
)

// orgRepo is one repository of the organisation: its plans (a gateway
// one, then a KServe one) and the namespace its objects live in.
type orgRepo struct {
	owner, name, ns string
	plans           [2]string
}

func (r orgRepo) full() string { return r.owner + "/" + r.name }

// app is plan's Argo CD Application: one per plan, named after the
// repository too.
func (r orgRepo) app(plan string) string { return r.name + "-" + plan }

// orgRepos: two installations (acme, globex), three repositories, six
// plans.
var orgRepos = []orgRepo{
	{owner: "acme", name: "platform", ns: "platform", plans: [2]string{"qwen", "fraud"}},
	{owner: "acme", name: "ml", ns: "ml", plans: [2]string{"llama", "ranker"}},
	{owner: "globex", name: "gitops", ns: "globex", plans: [2]string{"mistral", "embed"}},
}

const (
	orgSecret   = "org-e2e-secret"
	orgReviewer = "ana"
	// orgPoll is canarybot's --poll: an hour, so that only webhooks, and
	// the engine's own timers (a sync wait looks again after
	// canary.SyncPoll), move plans.
	orgPoll = time.Hour
)

// org is the organisation on the real stack: the fake GitHub serving the
// repositories, real Argo CD Applications syncing their overlays, and one
// `canarybot serve` process as the GitHub App.
type org struct {
	t       *testing.T
	ctx     context.Context
	s       *stack.Stack
	gh      *fakegithub.Server
	logPath string
}

// TestOrgServesEveryInstallationOnTheRealStack runs one `canarybot serve`
// (no --plan), as a GitHub App installed on two organisations, against
// the real stack: three repositories, six plans in both traffic modes,
// each synced by its own Argo CD Application from the fake GitHub's bare
// repository. Every rollout waits for a reviewer at 50%, where the
// kube-apiserver holds what Argo CD applied (HTTPRoute weights 50/50,
// InferenceService canaryTrafficPercent 50 on the canary's storageUri); a
// review wakes its plan alone; a plan pushed by a person is driven without
// a restart while an invalid one beside it gets a failing canarybot/plans
// check run; every plan is promoted, each transition committed once.
//
// The poll is 10s, not an hour as webhooks alone should allow: see
// orgPoll.
func TestOrgServesEveryInstallationOnTheRealStack(t *testing.T) {
	o := newOrg(t)
	t0 := time.Now()
	o.waitAwaitingApproval()
	t.Logf("six rollouts at 50%% awaiting approval after %s", time.Since(t0).Round(time.Second))
	for _, r := range orgRepos {
		o.checkLiveAt50(r)
	}

	platform := orgRepos[0]
	o.approveWakesOnly(platform, "qwen", "fraud")

	globex := orgRepos[2]
	o.pushPlanAndBrokenPlan(globex, "phi")

	for _, r := range orgRepos {
		for _, p := range r.plans {
			if r.name != platform.name || p != "qwen" {
				o.approve(r, p)
			}
		}
	}
	plans := map[orgRepo][]string{orgRepos[0]: orgRepos[0].plans[:], orgRepos[1]: orgRepos[1].plans[:],
		globex: {globex.plans[0], globex.plans[1], "phi"}}
	o.waitPromoted(plans)
	t.Logf("every plan promoted after %s", time.Since(t0).Round(time.Second))
	// phi has no pause: start, advance, promote.
	o.checkTransitions(plans, map[string]int{"phi": 3})
}

// newOrg starts the stack, seeds the fake GitHub, creates the Argo CD
// Applications, runs the KServe stand-in and starts canarybot.
func newOrg(t *testing.T) *org {
	bin, err := filepath.Abs("../../bin/canarybot")
	if err != nil || !isExecutable(bin) {
		t.Fatalf("%s missing: `make e2e` builds it first (make build)", bin)
	}
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	o := &org{t: t, ctx: ctx, s: s, logPath: s.LogPath("canarybot-org"),
		gh: fakegithub.New(t, fakegithub.Options{WebhookSecret: orgSecret, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})}
	for _, r := range orgRepos {
		seedOrgRepo(t, o.gh, r)
		for _, p := range r.plans {
			overlay := gatewayOverlay
			if p == r.plans[1] {
				overlay = kserveOverlay
			}
			if err := s.Application(ctx, r.app(p), o.gh.RepoPath(r.owner, r.name), overlay, r.ns); err != nil {
				t.Fatal(err)
			}
		}
	}
	o.gh.CreateRepo("acme", "docs", "main", t.TempDir()) // no .canarybot/: not served
	o.gh.AddInstallation("acme")
	o.gh.AddInstallation("globex")
	o.gh.AddUser(orgReviewer, fakegithub.PermWrite)
	go func() { _ = kservesim.Run(ctx, o.dyn(), kservesim.Options{}) }()
	o.waitSynced()
	o.startBot(bin)
	return o
}

// waitSynced waits until Argo CD has applied each repository's head
// through each of its Applications, before canarybot starts.
func (o *org) waitSynced() {
	client, err := argocd.NewClient(argocd.ClientOptions{Server: o.s.ArgoCD, PlainText: true, Token: "e2e"})
	if err != nil {
		o.t.Fatal(err)
	}
	defer client.Close()
	for _, r := range orgRepos {
		head, err := exec.Command("git", "-C", o.gh.RepoPath(r.owner, r.name), "rev-parse", "main").Output()
		if err != nil {
			o.t.Fatalf("head of %s: %v", r.full(), err)
		}
		for _, p := range r.plans {
			waitReadyApp(o.t, o.ctx, client, r.app(p), strings.TrimSpace(string(head)), 2*time.Minute)
		}
	}
}

func (o *org) dyn() dynamic.Interface {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.s.Kubeconfig)
	if err != nil {
		o.t.Fatal(err)
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		o.t.Fatal(err)
	}
	return d
}

// startBot runs `canarybot serve` as the App, with its webhook URL set on
// the fake GitHub; it is stopped (SIGTERM) when the test ends.
func (o *org) startBot(bin string) {
	t := o.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	o.gh.SetWebhookURL("http://" + addr + "/webhooks/github")
	key := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(key, o.gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--github-api-url", o.gh.URL()+"/", "--github-app-id", fmt.Sprint(o.gh.AppID()),
		"--github-private-key-file", key, "--dir", t.TempDir(), "--listen", addr,
		"--poll", orgPoll.String(), "--min-poll", "200ms", "--sweep", "1h",
		"--prometheus", "http://127.0.0.1:1", "--argocd-server", o.s.ArgoCD, "--argocd-plaintext", "--log-level", "debug")
	cmd.Env = append(os.Environ(), "GITHUB_WEBHOOK_SECRET="+orgSecret, "ARGOCD_AUTH_TOKEN=e2e")
	logf, err := os.Create(o.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			t.Logf("==== canarybot serve (%s), last lines:\n%s", o.logPath, o.logTail(80))
		}
	})
}

func (o *org) log() string {
	b, _ := os.ReadFile(o.logPath)
	return string(b)
}

func (o *org) logTail(n int) string {
	lines := strings.Split(strings.TrimRight(o.log(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// eventually polls ok until it holds, or fails with what and the bot's
// last log lines.
func (o *org) eventually(what string, timeout time.Duration, ok func() bool) {
	o.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			o.t.Fatalf("no %s after %s; canarybot's last lines:\n%s", what, timeout, o.logTail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitAwaitingApproval waits until every plan is at 50% on main with its
// approval PR open.
func (o *org) waitAwaitingApproval() {
	o.eventually("six rollouts at 50% awaiting approval", 3*time.Minute, func() bool {
		for _, r := range orgRepos {
			for _, p := range r.plans {
				if st := orgState(o.gh.RepoPath(r.owner, r.name), p); st == nil || st.Status.Weight != 50 ||
					approvalPR(o.gh, r.owner, r.name, p) == 0 {
					return false
				}
			}
		}
		return true
	})
	log := o.log()
	const serving = `msg="serving repository" repo=`
	if strings.Contains(log, serving+"acme/docs ") {
		o.t.Error("acme/docs has no .canarybot/ and was served")
	}
	for _, r := range orgRepos {
		if !strings.Contains(log, serving+r.full()+" ") {
			o.t.Errorf("%s not served", r.full())
		}
	}
}

// kubectl reads one field of a live object in r's namespace.
func (o *org) kubectl(r orgRepo, kind, name, jsonpath string) string {
	out, err := o.s.Kubectl(o.ctx, "", "get", kind, name, "-n", r.ns, "-o", "jsonpath="+jsonpath)
	if err != nil {
		return err.Error()
	}
	return out
}

// checkLiveAt50 reads back from the kube-apiserver what Argo CD applied
// for r's plans at 50%: the HTTPRoute's weights and the canary
// InferenceService's storageUri (gateway), canaryTrafficPercent and
// storageUri (KServe).
func (o *org) checkLiveAt50(r orgRepo) {
	o.t.Helper()
	gw, ks := r.plans[0], r.plans[1]
	want := map[string]string{
		"httproute qwen weights":          "50 50",
		"inferenceservice qwen-canary":    orgCandidate(gw),
		"inferenceservice fraud-detector": "50 " + orgCandidate(ks),
	}
	var got map[string]string
	read := func() bool {
		got = map[string]string{
			"httproute qwen weights":          o.kubectl(r, "httproute", "qwen", "{.spec.rules[0].backendRefs[*].weight}"),
			"inferenceservice qwen-canary":    o.kubectl(r, "inferenceservice", "qwen-canary", "{.spec.predictor.model.storageUri}"),
			"inferenceservice fraud-detector": o.kubectl(r, "inferenceservice", "fraud-detector", "{.spec.predictor.canaryTrafficPercent} {.spec.predictor.model.storageUri}"),
		}
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(30 * time.Second)
	for !read() {
		if time.Now().After(deadline) {
			o.t.Fatalf("%s at 50%%: live objects in namespace %s\n got %q\nwant %q", r.full(), r.ns, got, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
	o.t.Logf("%s at 50%% in the cluster: %s", r.full(), got)
}
