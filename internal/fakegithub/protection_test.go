package fakegithub

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

func TestProtectionBlocksMergeUntilApprovedAndGreen(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	f.s.Protect(owner, name, "main", 1, "canary/gates")
	pr := f.openPR(t, "canarybot/qwen", map[string]string{"apps/qwen/overlay/weights.yaml": "weight: 10\n"})
	head := pr.GetHead().GetSHA()
	merge := func() error {
		_, _, err := f.app.PullRequests.Merge(ctx, owner, name, pr.GetNumber(), "", &github.PullRequestOptions{SHA: head, MergeMethod: "squash"})
		return err
	}
	expectBlocked := func(step, message string) {
		t.Helper()
		err := merge()
		if status(err) != http.StatusMethodNotAllowed || !strings.Contains(err.Error(), message) {
			t.Fatalf("%s: merge = %v, want 405 %q", step, err, message)
		}
		got, _, err := f.app.PullRequests.Get(ctx, owner, name, pr.GetNumber())
		if err != nil || got.GetMergeableState() != "blocked" || !got.GetMergeable() {
			t.Errorf("%s: mergeable %v state %q, %v; want true, blocked", step, got.GetMergeable(), got.GetMergeableState(), err)
		}
	}
	expectBlocked("no review", "At least 1 approving review is required by reviewers with write access.")

	// The App opened the PR, so it may not approve it.
	if _, _, err := f.app.PullRequests.CreateReview(ctx, owner, name, pr.GetNumber(), &github.PullRequestReviewRequest{
		Event: github.String("APPROVE")}); status(err) != 422 || !strings.Contains(err.Error(), "Can not approve your own pull request") {
		t.Errorf("self-approval: %v, want 422", err)
	}
	// A reader's approval does not count; a comment is no approval.
	if _, err := f.s.Review(owner, name, pr.GetNumber(), "rita", "APPROVE", "lgtm"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Review(owner, name, pr.GetNumber(), "bob", "COMMENT", "hmm"); err != nil {
		t.Fatal(err)
	}
	expectBlocked("reader's approval", "approving review")
	if _, err := f.s.Review(owner, name, pr.GetNumber(), "bob", "REQUEST_CHANGES", "no"); err != nil {
		t.Fatal(err)
	}
	rv, _, err := f.userClient(t, "alice").PullRequests.CreateReview(ctx, owner, name, pr.GetNumber(),
		&github.PullRequestReviewRequest{Event: github.String("APPROVE"), Body: github.String("ship it")})
	if err != nil || rv.GetState() != "APPROVED" || rv.GetCommitID() != head {
		t.Fatalf("alice's approval = %v, %v", rv, err)
	}
	expectBlocked("changes requested", "Changes have been requested")
	if _, err := f.s.Review(owner, name, pr.GetNumber(), "bob", "APPROVE", ""); err != nil {
		t.Fatal(err)
	}
	expectBlocked("approved, check missing", `Required status check "canary/gates" is expected.`)

	run, _, err := f.app.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{Name: "canary/gates",
		HeadSHA: head, Status: github.String("in_progress")})
	if err != nil {
		t.Fatal(err)
	}
	expectBlocked("check running", "is in progress")
	if _, _, err := f.app.Checks.UpdateCheckRun(ctx, owner, name, run.GetID(), github.UpdateCheckRunOptions{Name: "canary/gates",
		Conclusion: github.String("failure")}); err != nil {
		t.Fatal(err)
	}
	expectBlocked("check failed", "is failing")
	// A newer run of the same check decides.
	if _, _, err := f.app.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{Name: "canary/gates",
		HeadSHA: head, Conclusion: github.String("success"), Output: &github.CheckRunOutput{Title: github.String("ok"), Summary: github.String("all gates passed")}}); err != nil {
		t.Fatal(err)
	}
	if err := merge(); err != nil {
		t.Fatalf("merge once approved and green: %v", err)
	}
	reviews, _, err := f.app.PullRequests.ListReviews(ctx, owner, name, pr.GetNumber(), nil)
	var states []string
	for _, r := range reviews {
		states = append(states, r.GetUser().GetLogin()+":"+r.GetState())
	}
	if want := "rita:APPROVED bob:COMMENTED bob:CHANGES_REQUESTED alice:APPROVED bob:APPROVED"; err != nil || strings.Join(states, " ") != want {
		t.Errorf("reviews = %v, %v; want %s", states, err, want)
	}
}

func TestProtectedBranchRefusesDirectUpdates(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	main := git(t, f.bare, "rev-parse", "main")
	next := f.commitFiles(t, f.app, main, "direct", map[string]string{"x": "1\n"})
	f.s.Protect(owner, name, "main", 1)
	ref := &github.Reference{Ref: github.String("refs/heads/main"), Object: &github.GitObject{SHA: next.SHA}}
	if _, _, err := f.app.Git.UpdateRef(ctx, owner, name, ref, false); status(err) != 422 || !strings.Contains(err.Error(), "Protected branch update failed") {
		t.Errorf("update of protected main: %v, want 422", err)
	}
	if _, err := f.app.Git.DeleteRef(ctx, owner, name, "heads/main"); status(err) != 422 {
		t.Errorf("delete protected main: %v, want 422", err)
	}
	f.s.Protect(owner, name, "main", 0) // a rule with no requirements lets pushes through
	if _, _, err := f.app.Git.UpdateRef(ctx, owner, name, ref, false); err != nil {
		t.Errorf("update with the protection lifted: %v", err)
	}
}

func TestReviewValidation(t *testing.T) {
	f := newFixture(t, Options{})
	pr := f.openPR(t, "topic", map[string]string{"x": "1\n"})
	tests := []struct {
		login, event, body, message string
	}{
		{"alice", "MAYBE", "", "event"},
		{"alice", "REQUEST_CHANGES", "", "Body is required"},
		{"nobody", "APPROVE", "", "no user"},
	}
	for _, tc := range tests {
		if _, err := f.s.Review(owner, name, pr.GetNumber(), tc.login, tc.event, tc.body); err == nil || !strings.Contains(err.Error(), tc.message) {
			t.Errorf("%s %s: %v, want %q", tc.login, tc.event, err, tc.message)
		}
	}
	if _, err := f.s.Review(owner, name, 42, "alice", "APPROVE", ""); err == nil {
		t.Error("review of a missing PR succeeded")
	}
	rv, err := f.s.Review(owner, name, pr.GetNumber(), "alice", "approve", "")
	if err != nil || rv.GetState() != "APPROVED" || rv.GetSubmittedAt().IsZero() {
		t.Errorf("lower-case event: %v, %v", rv, err)
	}
}

func TestCheckRuns(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	pr := f.openPR(t, "canarybot/qwen", map[string]string{"x": "1\n"})
	head := pr.GetHead().GetSHA()
	opts := github.CreateCheckRunOptions{Name: "canary/gates", HeadSHA: head, ExternalID: github.String("qwen/1"),
		DetailsURL: github.String("https://canary.example/qwen")}
	if _, _, err := f.userClient(t, "bob").Checks.CreateCheckRun(ctx, owner, name, opts); status(err) != http.StatusForbidden ||
		!strings.Contains(err.Error(), "You must authenticate via a GitHub App.") {
		t.Errorf("check run with a personal token: %v, want 403", err)
	}
	first, _, err := f.app.Checks.CreateCheckRun(ctx, owner, name, opts)
	if err != nil || first.GetStatus() != "queued" || len(first.PullRequests) != 1 || first.GetApp().GetID() != f.s.AppID() {
		t.Fatalf("create = %+v, %v", first, err)
	}
	done, _, err := f.app.Checks.UpdateCheckRun(ctx, owner, name, first.GetID(), github.UpdateCheckRunOptions{Name: "canary/gates",
		Conclusion: github.String("success"), Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s"), Text: github.String("evidence")}})
	if err != nil || done.GetStatus() != "completed" || done.CompletedAt == nil || done.GetOutput().GetText() != "evidence" {
		t.Errorf("complete = %+v, %v", done, err)
	}
	if _, _, err := f.app.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{Name: "other", HeadSHA: head}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.app.Checks.CreateCheckRun(ctx, owner, name, opts); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref  string
		opts *github.ListCheckRunsOptions
		want int
	}{
		{head, nil, 2},
		{"canarybot/qwen", nil, 2},
		{head, &github.ListCheckRunsOptions{CheckName: github.String("canary/gates")}, 1},
		{head, &github.ListCheckRunsOptions{CheckName: github.String("canary/gates"), Filter: github.String("all")}, 2},
		{"main", nil, 0},
	} {
		res, _, err := f.app.Checks.ListCheckRunsForRef(ctx, owner, name, tc.ref, tc.opts)
		if err != nil || res.GetTotal() != tc.want || len(res.CheckRuns) != tc.want {
			t.Errorf("list for %s %+v: %v, %v; want %d", tc.ref, tc.opts, res, err, tc.want)
		}
	}
	got, _, err := f.app.Checks.GetCheckRun(ctx, owner, name, first.GetID())
	if err != nil || got.GetConclusion() != "success" || got.GetExternalID() != "qwen/1" {
		t.Errorf("get = %+v, %v", got, err)
	}
	for _, bad := range []github.CreateCheckRunOptions{
		{Name: "x", HeadSHA: strings.Repeat("a", 40)},
		{Name: "x", HeadSHA: head, Conclusion: github.String("great")},
		{Name: "x", HeadSHA: head, Status: github.String("completed")},
		{HeadSHA: head},
	} {
		if _, _, err := f.app.Checks.CreateCheckRun(ctx, owner, name, bad); status(err) != 422 {
			t.Errorf("create %+v: %v, want 422", bad, err)
		}
	}
	combined, _, err := f.app.Repositories.GetCombinedStatus(ctx, owner, name, head, nil)
	if err != nil || combined.GetState() != "pending" || combined.GetTotalCount() != 0 {
		t.Errorf("combined status without statuses = %v, %v; want pending", combined, err)
	}
	if _, _, err := f.userClient(t, "alice").Repositories.CreateStatus(ctx, owner, name, head, &github.RepoStatus{
		State: github.String("success"), Context: github.String("ci")}); err != nil {
		t.Fatal(err)
	}
	combined, _, err = f.app.Repositories.GetCombinedStatus(ctx, owner, name, "canarybot/qwen", nil)
	if err != nil || combined.GetState() != "success" || combined.GetTotalCount() != 1 {
		t.Errorf("combined status = %v, %v; want success", combined, err)
	}
	routes := map[string]int{}
	for _, c := range f.s.Calls() {
		routes[c.Route]++
	}
	if routes["GET /repos/{owner}/{repo}/commits/{ref}/check-runs"] != 5 || routes["GET /repos/{owner}/{repo}/commits/{ref}/status"] != 2 {
		t.Errorf("calls by route = %v", routes)
	}
}

// With "dismiss stale approvals", a new head on the pull request dismisses
// its approvals, and the merge is blocked again until someone approves
// the new head.
func TestDismissStaleApprovals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	f.s.Protect(owner, name, "main", 1)
	f.s.DismissStaleApprovals(owner, name, "main")
	pr := f.openPR(t, "canarybot/qwen", map[string]string{"apps/qwen/overlay/weights.yaml": "weight: 10\n"})
	first := pr.GetHead().GetSHA()
	if _, err := f.s.Review(owner, name, pr.GetNumber(), "alice", "APPROVE", ""); err != nil {
		t.Fatal(err)
	}
	next := f.commitFiles(t, f.app, first, "moved on", map[string]string{"apps/qwen/overlay/weights.yaml": "weight: 20\n"})
	if _, _, err := f.app.Git.UpdateRef(ctx, owner, name, &github.Reference{Ref: github.String("refs/heads/canarybot/qwen"),
		Object: &github.GitObject{SHA: next.SHA}}, false); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.app.PullRequests.Merge(ctx, owner, name, pr.GetNumber(), "", &github.PullRequestOptions{SHA: next.GetSHA()})
	if status(err) != http.StatusMethodNotAllowed || !strings.Contains(err.Error(), "approving review is required") {
		t.Fatalf("merge after a new head: %v, want blocked for want of an approval", err)
	}
	reviews, _, err := f.app.PullRequests.ListReviews(ctx, owner, name, pr.GetNumber(), nil)
	if err != nil || len(reviews) != 1 || reviews[0].GetState() != "DISMISSED" || reviews[0].GetCommitID() != first {
		t.Fatalf("reviews after the new head: %+v, %v; want alice's approval of %s dismissed", reviews, err, first)
	}
	rv, err := f.s.Review(owner, name, pr.GetNumber(), "alice", "APPROVE", "")
	if err != nil || rv.GetCommitID() != next.GetSHA() {
		t.Fatalf("approve the new head: %v, %v", rv, err)
	}
	if _, _, err := f.app.PullRequests.Merge(ctx, owner, name, pr.GetNumber(), "", &github.PullRequestOptions{SHA: next.GetSHA()}); err != nil {
		t.Fatalf("merge once the new head is approved: %v", err)
	}
}
