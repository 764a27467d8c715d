package fakegithub

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

func TestOpenPullRequest(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	pr := f.openPR(t, "canarybot/qwen", map[string]string{"apps/qwen/overlay/weights.yaml": "weight: 10\n"})
	head := git(t, f.bare, "rev-parse", "canarybot/qwen")
	if pr.GetNumber() != 1 || pr.GetState() != "open" || pr.GetHead().GetSHA() != head || pr.GetBase().GetRef() != "main" ||
		pr.GetUser().GetLogin() != f.s.BotLogin() || !pr.GetMergeable() || pr.GetMergeableState() != "clean" {
		t.Errorf("new PR = %+v", pr)
	}

	newPR := func(head, base string) *github.NewPullRequest {
		return &github.NewPullRequest{Title: github.String("t"), Head: github.String(head), Base: github.String(base)}
	}
	f.branch(t, f.app, "empty", git(t, f.bare, "rev-parse", "main"))
	tests := []struct {
		name    string
		in      *github.NewPullRequest
		message string
	}{
		{"duplicate", newPR("acme:canarybot/qwen", "main"), "A pull request already exists for acme:canarybot/qwen."},
		{"duplicate, bare branch", newPR("canarybot/qwen", "main"), "A pull request already exists"},
		{"no commits", newPR("empty", "main"), "No commits between main and empty"},
		{"missing head", newPR("nope", "main"), "head"},
		{"missing base", newPR("canarybot/qwen", "nope"), "base"},
		{"no title", &github.NewPullRequest{Head: github.String("empty"), Base: github.String("main")}, "title"},
	}
	for _, tc := range tests {
		if _, _, err := f.app.PullRequests.Create(ctx, owner, name, tc.in); status(err) != 422 || !strings.Contains(err.Error(), tc.message) {
			t.Errorf("%s: %v, want 422 with %q", tc.name, err, tc.message)
		}
	}

	// head.sha follows the branch, and moving it emits synchronize.
	next := f.commitFiles(t, f.app, head, "more", map[string]string{"x": "1\n"})
	if _, _, err := f.app.Git.UpdateRef(ctx, owner, name, &github.Reference{Ref: github.String("refs/heads/canarybot/qwen"),
		Object: &github.GitObject{SHA: next.SHA}}, false); err != nil {
		t.Fatal(err)
	}
	got, _, err := f.app.PullRequests.Get(ctx, owner, name, 1)
	if err != nil || got.GetHead().GetSHA() != next.GetSHA() {
		t.Errorf("head after the branch moved = %s, %v; want %s", got.GetHead().GetSHA(), err, next.GetSHA())
	}
	commits, _, err := f.app.PullRequests.ListCommits(ctx, owner, name, 1, nil)
	if err != nil || len(commits) != 2 || commits[1].GetSHA() != next.GetSHA() || commits[0].GetCommit().GetMessage() != "change on canarybot/qwen" {
		t.Errorf("PR commits = %v, %v", commits, err)
	}
	if fake := f.s.PR(owner, name, 1); fake.GetHead().GetSHA() != next.GetSHA() || fake.GetTitle() != pr.GetTitle() {
		t.Errorf("PR(1) = %+v", fake)
	}

	edited, _, err := f.app.PullRequests.Edit(ctx, owner, name, 1, &github.PullRequest{Title: github.String("new title"), Body: github.String("b2")})
	if err != nil || edited.GetTitle() != "new title" || edited.GetBody() != "b2" {
		t.Errorf("edit = %v, %v", edited, err)
	}
}

func TestListAndClosePullRequests(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	f.openPR(t, "canarybot/qwen", map[string]string{"x": "1\n"})
	newPR := func(head, base string) *github.NewPullRequest {
		return &github.NewPullRequest{Title: github.String("t"), Head: github.String(head), Base: github.String(base)}
	}
	second := f.openPR(t, "other", map[string]string{"y": "2\n"})
	for _, tc := range []struct {
		opts *github.PullRequestListOptions
		want []int
	}{
		{&github.PullRequestListOptions{}, []int{second.GetNumber(), 1}},
		{&github.PullRequestListOptions{Head: "acme:canarybot/qwen", Base: "main"}, []int{1}},
		{&github.PullRequestListOptions{Head: "someone-else:canarybot/qwen"}, nil},
		{&github.PullRequestListOptions{State: "closed"}, nil},
	} {
		list, _, err := f.app.PullRequests.List(ctx, owner, name, tc.opts)
		var nums []int
		for _, p := range list {
			nums = append(nums, p.GetNumber())
		}
		if err != nil || !equalInts(nums, tc.want) {
			t.Errorf("list %+v = %v, %v; want %v", tc.opts, nums, err, tc.want)
		}
	}
	closed, _, err := f.app.PullRequests.Edit(ctx, owner, name, 1, &github.PullRequest{State: github.String("closed")})
	if err != nil || closed.GetState() != "closed" || closed.GetMerged() {
		t.Errorf("close = %v, %v", closed, err)
	}
	all, _, err := f.app.PullRequests.List(ctx, owner, name, &github.PullRequestListOptions{State: "closed"})
	if err != nil || len(all) != 1 || all[0].GetNumber() != 1 {
		t.Errorf("closed PRs = %v, %v", all, err)
	}
	// A closed PR frees its branch for a new one.
	if _, _, err := f.app.PullRequests.Create(ctx, owner, name, newPR("canarybot/qwen", "main")); err != nil {
		t.Errorf("reopen as a new PR: %v", err)
	}
	if _, _, err := f.userClient(t, "rita").PullRequests.Create(ctx, owner, name, newPR("other", "main")); status(err) != http.StatusForbidden {
		t.Errorf("PR by a reader: %v, want 403", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMergeReallyMovesTheBaseBranch(t *testing.T) {
	tests := []struct {
		method  string
		parents int // of the new base head
		commits int // new commits on base
	}{
		{"merge", 2, 3},
		{"squash", 1, 1},
		{"rebase", 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, Options{})
			pr := f.openPR(t, "topic", map[string]string{"apps/qwen/overlay/weights.yaml": "weight: 10\n"})
			head := git(t, f.bare, "rev-parse", "topic")
			second := f.commitFiles(t, f.app, head, "second", map[string]string{"apps/qwen/overlay/extra.yaml": "x: 1\n"})
			if _, _, err := f.app.Git.UpdateRef(ctx, owner, name, &github.Reference{Ref: github.String("refs/heads/topic"),
				Object: &github.GitObject{SHA: second.SHA}}, false); err != nil {
				t.Fatal(err)
			}
			// main moves on meanwhile, touching another file.
			main := git(t, f.bare, "rev-parse", "main")
			other := f.commitFiles(t, f.userClient(t, "alice"), main, "unrelated", map[string]string{"README.md": "new readme\n"})
			git(t, f.bare, "update-ref", "refs/heads/main", other.GetSHA())

			_, _, err := f.app.PullRequests.Merge(ctx, owner, name, pr.GetNumber(), "", &github.PullRequestOptions{SHA: head, MergeMethod: tc.method})
			if status(err) != http.StatusConflict || !strings.Contains(err.Error(), "Head branch was modified") {
				t.Fatalf("merge at a stale head: %v, want 409", err)
			}
			if got := git(t, f.bare, "rev-parse", "main"); got != other.GetSHA() {
				t.Fatalf("a refused merge moved main to %s", got)
			}
			res, _, err := f.app.PullRequests.Merge(ctx, owner, name, pr.GetNumber(), "the message",
				&github.PullRequestOptions{SHA: second.GetSHA(), MergeMethod: tc.method, CommitTitle: "the title"})
			if err != nil || !res.GetMerged() {
				t.Fatalf("merge: %v, %v", res, err)
			}
			if got := git(t, f.bare, "rev-parse", "main"); got != res.GetSHA() {
				t.Errorf("main at %s, merge answered %s", got, res.GetSHA())
			}
			if n := len(strings.Fields(git(t, f.bare, "log", "--format=%P", "-1", "main"))); n != tc.parents {
				t.Errorf("new main has %d parents, want %d", n, tc.parents)
			}
			if n := len(strings.Fields(git(t, f.bare, "rev-list", "main", "^"+other.GetSHA()))); n != tc.commits {
				t.Errorf("%d new commits on main, want %d", n, tc.commits)
			}
			for p, want := range map[string]string{"apps/qwen/overlay/weights.yaml": "weight: 10", "apps/qwen/overlay/extra.yaml": "x: 1", "README.md": "new readme"} {
				if got := git(t, f.bare, "show", "main:"+p); got != want {
					t.Errorf("main:%s = %q, want %q", p, got, want)
				}
			}
			if tc.method != "rebase" {
				if got := git(t, f.bare, "log", "-1", "--format=%B", "main"); got != "the title\n\nthe message" {
					t.Errorf("merge commit message = %q", got)
				}
			}
			got, _, err := f.app.PullRequests.Get(ctx, owner, name, pr.GetNumber())
			if err != nil || !got.GetMerged() || got.GetState() != "closed" || got.GetMergeCommitSHA() != res.GetSHA() ||
				got.GetMergedBy().GetLogin() != f.s.BotLogin() || got.GetHead().GetSHA() != second.GetSHA() {
				t.Errorf("merged PR = %+v, %v", got, err)
			}
			if merged, _, err := f.app.PullRequests.IsMerged(ctx, owner, name, pr.GetNumber()); err != nil || !merged {
				t.Errorf("IsMerged = %v, %v", merged, err)
			}
			if _, _, err := f.app.PullRequests.Merge(ctx, owner, name, pr.GetNumber(), "", nil); status(err) != http.StatusMethodNotAllowed {
				t.Errorf("merging twice: %v, want 405", err)
			}
			if c, _, err := f.app.Git.GetCommit(ctx, owner, name, res.GetSHA()); err != nil || !c.GetVerification().GetVerified() {
				t.Errorf("merge commit verification: %+v, %v", c.GetVerification(), err)
			}
		})
	}
}

func TestMergeConflict(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	pr := f.openPR(t, "topic", map[string]string{"apps/qwen/overlay/weights.yaml": "weight: 10\n"})
	main := git(t, f.bare, "rev-parse", "main")
	clash := f.commitFiles(t, f.app, main, "clash", map[string]string{"apps/qwen/overlay/weights.yaml": "weight: 50\n"})
	git(t, f.bare, "update-ref", "refs/heads/main", clash.GetSHA())

	got, _, err := f.app.PullRequests.Get(ctx, owner, name, pr.GetNumber())
	if err != nil || got.Mergeable == nil || got.GetMergeable() || got.GetMergeableState() != "dirty" {
		t.Errorf("conflicting PR: mergeable %v state %q, %v", got.Mergeable, got.GetMergeableState(), err)
	}
	for _, method := range []string{"merge", "squash", "rebase"} {
		_, _, err := f.app.PullRequests.Merge(ctx, owner, name, pr.GetNumber(), "", &github.PullRequestOptions{MergeMethod: method})
		if status(err) != http.StatusMethodNotAllowed || !strings.Contains(err.Error(), "not mergeable") {
			t.Errorf("%s of a conflicting PR: %v, want 405", method, err)
		}
	}
	if got := git(t, f.bare, "rev-parse", "main"); got != clash.GetSHA() {
		t.Errorf("main moved to %s", got)
	}
	if _, _, err := f.app.PullRequests.Merge(ctx, owner, name, pr.GetNumber(), "", &github.PullRequestOptions{MergeMethod: "fast"}); status(err) != 422 {
		t.Errorf("unknown merge method: %v, want 422", err)
	}
}
