package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/github"
	"github.com/canarybot/canarybot/pkg/github/webhook"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/kustomize"
)

func TestGitHubAppRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs Prometheus and whole rollouts")
	}
	w := newWorld(t)
	v1 := w.push("1.0.0")
	w.seed(v1)
	ana := w.client(w.gh.AddUser("ana", "write"))
	rita := w.client(w.gh.AddUser("rita", "read"))
	w.startBot()

	// 1. A GHCR-style registry_package webhook announces v2; the bot opens
	// and merges the first steps' PRs and stops at the approval step.
	v2 := w.push("2.0.0")
	w.announce(v2)
	approval := w.waitPR(ana, "the approval PR for v2", func(pr *gh.PullRequest) bool {
		return pr.GetState() == "open" && strings.Contains(pr.GetBody(), "waits for approval") && strings.Contains(pr.GetBody(), v2.URI)
	})
	body := approval.GetBody()
	for _, want := range []string{
		"**Digest / version:** `" + strings.TrimPrefix(v2.URI[strings.Index(v2.URI, "@"):], "@") + "`",
		"| 2 | pause until approved | done |", "| 3 | set canary weight 100% | **this change** |",
		"| answer-quality | ✅ Successful | `max(model_answer_quality{role=\"canary\"})` |",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("approval PR body lacks %q:\n%s", want, body)
		}
	}
	if !strings.HasPrefix(approval.GetHead().GetRef(), "canarybot/qwen/") {
		t.Errorf("approval PR from branch %q, want canarybot/qwen/<digest>", approval.GetHead().GetRef())
	}
	w.expectCheckRun(ana, approval.GetHead().GetSHA())
	// One merged PR per transition: start at 20%, on to the analysis, on to
	// the approval step.
	if merged := w.mergedPRs(ana); len(merged) != 3 {
		t.Fatalf("before approval %d PRs were merged (%v), want 3", len(merged), titles(merged))
	}

	// 2. A read-only user's ChatOps command is refused with a reply.
	w.comment(rita, approval.GetNumber(), "/canarybot promote")
	w.waitComment(ana, approval.GetNumber(), "need write access")
	if st := w.state(); st.Status.Phase != canary.PhaseProgressing || st.Status.StepIndex != 2 {
		t.Fatalf("after a refused command the rollout is %s at step %d, want still waiting at step 2", st.Status.Phase, st.Status.StepIndex)
	}

	// 3. The approval webhook: the bot merges the PR, exactly the head that
	// was approved, and promotes.
	approvedHead := w.getPR(ana, approval.GetNumber()).GetHead().GetSHA()
	if _, _, err := ana.PullRequests.CreateReview(w.ctx, owner, repoName, approval.GetNumber(),
		&gh.PullRequestReviewRequest{Event: gh.String("APPROVE"), Body: gh.String("answers look right")}); err != nil {
		t.Fatalf("approve: %v", err)
	}
	st := w.waitState("v2 promoted", func(s canary.StateStatus) bool {
		return s.Phase == canary.PhasePromoted && s.Stable.URI == v2.URI
	})
	if pr := w.getPR(ana, approval.GetNumber()); !pr.GetMerged() {
		t.Fatalf("approval PR #%d is %s, not merged", pr.GetNumber(), pr.GetState())
	} else if pr.GetHead().GetSHA() != approvedHead {
		t.Fatalf("approval PR #%d merged head %s, but %s was approved", pr.GetNumber(), pr.GetHead().GetSHA(), approvedHead)
	}
	w.expectVerifiedHead(ana)

	// 4. A replayed delivery does nothing.
	w.replay()

	// 5. v3 answers badly: the gate fails, a revert PR is opened, labelled,
	// commented and merged, and Git ends on the stable model.
	w.quality.Store(0.5)
	v3 := w.push("3.0.0")
	w.announce(v3)
	st = w.waitState("v3 reverted", func(s canary.StateStatus) bool {
		return s.Phase == canary.PhaseReverted && s.IsFailed(v3.URI)
	})
	if st.Status.Stable.URI != v2.URI {
		t.Fatalf("after the revert stable is %s, want v2", st.Status.Stable.URI)
	}
	revert := w.waitPR(ana, "the merged revert PR", func(pr *gh.PullRequest) bool {
		return pr.GetMerged() && strings.Contains(pr.GetTitle(), "revert")
	})
	w.expectRevertMarks(ana, revert)
	w.expectOverlayServes(v2)
	w.logCalls()
}

func (w *world) client(token string) *gh.Client {
	c, err := gh.NewClient(nil).WithAuthToken(token).WithEnterpriseURLs(w.gh.URL()+"/", w.gh.URL()+"/")
	if err != nil {
		w.t.Fatal(err)
	}
	c.BaseURL.Path = "/"
	return c
}

// announce sends the registry_package "published" delivery GHCR sends for
// a new container version, signed with the App's webhook secret.
func (w *world) announce(a canary.Artifact) {
	w.t.Helper()
	digest := a.URI[strings.Index(a.URI, "@")+1:]
	body := fmt.Sprintf(`{"action":"published","registry_package":{"name":"qwen","namespace":"acme","package_type":"CONTAINER",
"ecosystem":"CONTAINER","package_version":{"version":%q,"package_url":%q,"container_metadata":{"tag":{"name":%q,"digest":%q}}}},
"repository":{"name":%q,"owner":{"login":%q}},"installation":{"id":%d},"sender":{"login":"release-bot"}}`,
		digest, w.regRepo+":"+a.Version, a.Version, digest, repoName, owner, w.gh.InstallationID())
	req, _ := http.NewRequestWithContext(w.ctx, http.MethodPost, w.botURL, bytes.NewReader([]byte(body)))
	req.Header.Set(webhook.HeaderEvent, "registry_package")
	req.Header.Set(webhook.HeaderDelivery, "pkg-"+a.Version)
	req.Header.Set(webhook.HeaderSignature, "sha256="+hex.EncodeToString(webhook.Sign([]byte(secret), []byte(body))))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("deliver registry_package: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		w.t.Fatalf("registry_package delivery answered %d, want 202", resp.StatusCode)
	}
}

func (w *world) eventually(what string, timeout time.Duration, fn func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for !fn() {
		if time.Now().After(deadline) {
			w.dumpReports()
			w.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (w *world) dumpReports() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.reports[max(0, len(w.reports)-15):] {
		w.t.Logf("tick: %s %s (commit %s)", r.Decision.Action, r.Decision.Reason, r.Commit.SHA)
	}
}

func (w *world) waitPR(c *gh.Client, what string, ok func(*gh.PullRequest) bool) *gh.PullRequest {
	w.t.Helper()
	var found *gh.PullRequest
	w.eventually(what, 90*time.Second, func() bool {
		prs, _, err := c.PullRequests.List(w.ctx, owner, repoName, &gh.PullRequestListOptions{State: "all", ListOptions: gh.ListOptions{PerPage: 100}})
		if err != nil {
			w.t.Fatalf("list PRs: %v", err)
		}
		for _, pr := range prs {
			if ok(pr) {
				found = pr
				return true
			}
		}
		return false
	})
	return found
}

func (w *world) getPR(c *gh.Client, n int) *gh.PullRequest {
	pr, _, err := c.PullRequests.Get(w.ctx, owner, repoName, n)
	if err != nil {
		w.t.Fatalf("get PR #%d: %v", n, err)
	}
	return pr
}

func (w *world) mergedPRs(c *gh.Client) []*gh.PullRequest {
	prs, _, err := c.PullRequests.List(w.ctx, owner, repoName, &gh.PullRequestListOptions{State: "closed", ListOptions: gh.ListOptions{PerPage: 100}})
	if err != nil {
		w.t.Fatalf("list closed PRs: %v", err)
	}
	var out []*gh.PullRequest
	for _, pr := range prs {
		if full := w.getPR(c, pr.GetNumber()); full.GetMerged() {
			out = append(out, full)
		}
	}
	return out
}

func titles(prs []*gh.PullRequest) []string {
	var out []string
	for _, pr := range prs {
		out = append(out, fmt.Sprintf("#%d %s", pr.GetNumber(), pr.GetTitle()))
	}
	return out
}

func (w *world) expectCheckRun(c *gh.Client, sha string) {
	w.t.Helper()
	// The bot opens the PR, then puts the check run on its head: wait for it.
	var runs *gh.ListCheckRunsResults
	w.eventually(fmt.Sprintf("a %s check run on %s", github.CheckName, sha), 30*time.Second, func() bool {
		var err error
		runs, _, err = c.Checks.ListCheckRunsForRef(w.ctx, owner, repoName, sha, &gh.ListCheckRunsOptions{CheckName: gh.String(github.CheckName)})
		if err != nil {
			w.t.Fatalf("list check runs: %v", err)
		}
		return runs.GetTotal() > 0
	})
	out := runs.CheckRuns[0].GetOutput()
	if !strings.Contains(out.GetText(), "answer-quality") || !strings.Contains(out.GetTitle(), "waits for approval") {
		w.t.Fatalf("check run output lacks the evidence: %q / %q", out.GetTitle(), out.GetText())
	}
}

func (w *world) comment(c *gh.Client, n int, text string) {
	if _, _, err := c.Issues.CreateComment(w.ctx, owner, repoName, n, &gh.IssueComment{Body: gh.String(text)}); err != nil {
		w.t.Fatalf("comment on #%d: %v", n, err)
	}
}

func (w *world) waitComment(c *gh.Client, n int, substr string) {
	w.t.Helper()
	w.eventually(fmt.Sprintf("a comment on #%d saying %q", n, substr), 30*time.Second, func() bool {
		cs, _, err := c.Issues.ListComments(w.ctx, owner, repoName, n, nil)
		if err != nil {
			w.t.Fatalf("list comments: %v", err)
		}
		for _, cm := range cs {
			if strings.Contains(cm.GetBody(), substr) {
				return true
			}
		}
		return false
	})
}

// state reads the rollout state from the bare repo, as Argo CD and people see it.
func (w *world) state() *canary.RolloutState {
	w.t.Helper()
	r, err := gitops.OpenReadOnly(w.ctx, gitops.Options{URL: w.gh.RepoPath(owner, repoName)})
	if err != nil {
		w.t.Fatal(err)
	}
	st, err := r.ReadState(w.ctx, "", "qwen")
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

func (w *world) waitState(what string, ok func(canary.StateStatus) bool) *canary.RolloutState {
	w.t.Helper()
	var st *canary.RolloutState
	w.eventually(what, 120*time.Second, func() bool {
		st = w.state()
		return ok(st.Status)
	})
	return st
}

// expectVerifiedHead: commits made through the API show as verified.
func (w *world) expectVerifiedHead(c *gh.Client) {
	ref, _, err := c.Git.GetRef(w.ctx, owner, repoName, "heads/main")
	if err != nil {
		w.t.Fatal(err)
	}
	commit, _, err := c.Git.GetCommit(w.ctx, owner, repoName, ref.GetObject().GetSHA())
	if err != nil {
		w.t.Fatal(err)
	}
	if !commit.GetVerification().GetVerified() {
		w.t.Errorf("head of main %s is not verified: %+v", ref.GetObject().GetSHA(), commit.GetVerification())
	}
	if !strings.Contains(commit.GetMessage(), canary.TrailerPlan+": qwen") {
		w.t.Errorf("squash-merged commit lost the trailers:\n%s", commit.GetMessage())
	}
}

// replay redelivers the approval's delivery: the bot answers that it was
// handled and nothing new happens.
func (w *world) replay() {
	w.t.Helper()
	var id string
	for _, d := range w.gh.Deliveries() {
		if d.Event == "pull_request_review" {
			id = d.ID
		}
	}
	if id == "" {
		w.t.Fatal("no pull_request_review delivery was made")
	}
	before := len(w.mergedPRs(w.client(w.gh.AddUser("auditor", "read"))))
	if err := w.gh.Redeliver(id); err != nil {
		w.t.Fatalf("redeliver %s: %v", id, err)
	}
	if err := w.gh.WaitDeliveries(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	var status int
	for _, d := range w.gh.Deliveries() {
		if d.ID == id && d.Redelivery {
			status = d.StatusCode
		}
	}
	if status != http.StatusOK {
		w.t.Fatalf("replayed delivery %s answered %d, want 200 (already handled)", id, status)
	}
	time.Sleep(time.Second)
	if after := len(w.mergedPRs(w.client(w.gh.AddUser("auditor2", "read")))); after != before {
		w.t.Fatalf("a replayed delivery merged %d more PRs", after-before)
	}
}

func (w *world) expectRevertMarks(c *gh.Client, pr *gh.PullRequest) {
	w.t.Helper()
	labels, _, err := c.Issues.ListLabelsByIssue(w.ctx, owner, repoName, pr.GetNumber(), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	var names []string
	for _, l := range labels {
		names = append(names, l.GetName())
	}
	if !contains(names, github.LabelRevert) {
		w.t.Errorf("revert PR #%d labels %v lack %s", pr.GetNumber(), names, github.LabelRevert)
	}
	w.waitComment(c, pr.GetNumber(), "gate answer-quality failed")
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// expectOverlayServes builds the overlay at the head of main and checks
// that all traffic goes to a's stable backend.
func (w *world) expectOverlayServes(a canary.Artifact) {
	w.t.Helper()
	clone, err := gitops.Open(w.ctx, gitops.Options{URL: w.gh.RepoPath(owner, repoName), Dir: filepath.Join(w.t.TempDir(), "check")})
	if err != nil {
		w.t.Fatal(err)
	}
	tr, err := clone.Checkout(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	out, err := kustomize.NewBuilder().Build(w.ctx, tr.FS, "manifests/overlays/qwen")
	if err != nil {
		w.t.Fatal(err)
	}
	ex, err := kustomize.Parse(out)
	if err != nil {
		w.t.Fatal(err)
	}
	if got := ex.InferenceServices["qwen-stable"].StorageURI; got != a.Location() {
		w.t.Errorf("stable serves %s, want %s", got, a.Location())
	}
	if wt := ex.HTTPRoutes["qwen"].Weights["qwen-canary-predictor"]; wt != 0 {
		w.t.Errorf("canary weight %d after the revert, want 0", wt)
	}
	if _, err := fs.Stat(tr.FS, canary.StatePath("qwen")); err != nil {
		w.t.Errorf("state file: %v", err)
	}
}

// logCalls prints the API calls the bot made, by endpoint and status.
func (w *world) logCalls() {
	mfs, err := w.metrics.Gather()
	if err != nil {
		w.t.Fatal(err)
	}
	var lines []string
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "canarybot_github_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var lbl []string
			for _, l := range m.GetLabel() {
				lbl = append(lbl, l.GetValue())
			}
			lines = append(lines, fmt.Sprintf("%5.0f %s", m.GetCounter().GetValue(), strings.Join(lbl, " ")))
			total += m.GetCounter().GetValue()
		}
	}
	sort.Strings(lines)
	w.t.Logf("GitHub API calls by the bot: %.0f\n%s", total, strings.Join(lines, "\n"))
	if total == 0 {
		w.t.Error("the bot's API-call metric counted nothing")
	}
}

// Closing the approval PR without merging it is the reviewer's rejection:
// canarybot reverts the canary and says so on the PR.
func TestClosingTheApprovalPRRevertsTheCanary(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs Prometheus and a rollout")
	}
	w := newWorld(t)
	w.seed(w.push("1.0.0"))
	ana := w.client(w.gh.AddUser("ana", "write"))
	w.startBot()
	v2 := w.push("2.0.0")
	w.announce(v2)
	approval := w.waitPR(ana, "the approval PR for v2", func(pr *gh.PullRequest) bool {
		return pr.GetState() == "open" && strings.Contains(pr.GetBody(), "waits for approval")
	})
	if _, _, err := ana.PullRequests.Edit(w.ctx, owner, repoName, approval.GetNumber(), &gh.PullRequest{State: gh.String("closed")}); err != nil {
		t.Fatalf("close the approval PR: %v", err)
	}
	st := w.waitState("v2 reverted", func(s canary.StateStatus) bool {
		return s.Phase == canary.PhaseReverted && s.IsFailed(v2.URI)
	})
	if !strings.Contains(st.Status.Reason, fmt.Sprintf("approval PR #%d closed without merging", approval.GetNumber())) {
		t.Fatalf("reverted for %q, want the closed approval PR named", st.Status.Reason)
	}
	w.waitComment(ana, approval.GetNumber(), "done, revert committed")
}

// An approval applies to the commit it was given on. When the base branch
// moves after the change was proposed and the move touched files the
// change writes, the bot does not merge the approved diff onto content it
// was not built on: it proposes the transition again on the new head,
// says why on the PR, and waits for a new review. A move that touched
// none of them (a human's unrelated edit, another plan's step) leaves the
// approval standing: the PR merged has exactly the head approved last.
// The branch's protection dismisses stale approvals, as GitHub's rule
// does.
func TestApprovalOfAMovedBaseIsReRequested(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs Prometheus and whole rollouts")
	}
	w := newWorld(t)
	v1 := w.push("1.0.0")
	w.seed(v1)
	w.gh.DismissStaleApprovals(owner, repoName, "main")
	ana := w.client(w.gh.AddUser("ana", "write"))
	w.startBot()
	v2 := w.push("2.0.0")
	w.announce(v2)
	approval := w.waitPR(ana, "the approval PR for v2", func(pr *gh.PullRequest) bool {
		return pr.GetState() == "open" && strings.Contains(pr.GetBody(), "waits for approval")
	})
	first := approval.GetHead().GetSHA()
	route := "manifests/overlays/qwen/canarybot/httproute-qwen.yaml"
	b, err := w.readMain(route)
	if err != nil {
		t.Fatal(err)
	}
	w.humanCommit("hand-edit the generated route", map[string][]byte{route: append(b,
		"- op: add\n  path: /metadata/labels/edited-by\n  value: hand\n"...)})
	approve := func() {
		t.Helper()
		if _, _, err := ana.PullRequests.CreateReview(w.ctx, owner, repoName, approval.GetNumber(),
			&gh.PullRequestReviewRequest{Event: gh.String("APPROVE")}); err != nil {
			t.Fatalf("approve: %v", err)
		}
	}
	approve()
	w.waitComment(ana, approval.GetNumber(), "moved since this change was proposed")
	second := w.getPR(ana, approval.GetNumber())
	if second.GetMerged() || second.GetHead().GetSHA() == first {
		t.Fatalf("after the base moved: merged %v, head %s (first %s); want it open on a new head", second.GetMerged(),
			second.GetHead().GetSHA(), first)
	}
	if st := w.state(); st.Status.StepIndex != 2 || st.Status.Phase != canary.PhaseProgressing {
		t.Fatalf("the rollout moved without a new review: %s step %d", st.Status.Phase, st.Status.StepIndex)
	}
	w.humanCommit("docs: a note", map[string][]byte{"docs/notes.md": []byte("unrelated\n")})
	approve()
	w.waitState("v2 promoted", func(s canary.StateStatus) bool {
		return s.Phase == canary.PhasePromoted && s.Stable.URI == v2.URI
	})
	merged := w.getPR(ana, approval.GetNumber())
	if !merged.GetMerged() || merged.GetHead().GetSHA() != second.GetHead().GetSHA() {
		t.Fatalf("merged %v at head %s, want the re-approved head %s", merged.GetMerged(), merged.GetHead().GetSHA(),
			second.GetHead().GetSHA())
	}
	if b, err := w.readMain("docs/notes.md"); err != nil || string(b) != "unrelated\n" {
		t.Errorf("the human's commit was lost: %q, %v", b, err)
	}
}

// humanCommit commits files to main as a person would, outside the bot.
func (w *world) humanCommit(subject string, files map[string][]byte) {
	w.t.Helper()
	human, err := gitops.Open(w.ctx, gitops.Options{URL: w.gh.RepoPath(owner, repoName), Dir: filepath.Join(w.t.TempDir(), "human"),
		AuthorName: "Platform Team", AuthorEmail: "platform@example.com"})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := human.Transact(w.ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
		return &canary.Change{Subject: subject, Files: files}, nil
	}); err != nil {
		w.t.Fatalf("%s: %v", subject, err)
	}
}

// readMain reads a file on main.
func (w *world) readMain(p string) ([]byte, error) {
	r, err := gitops.OpenReadOnly(w.ctx, gitops.Options{URL: w.gh.RepoPath(owner, repoName)})
	if err != nil {
		return nil, err
	}
	return r.ReadFile(w.ctx, "", p)
}
