package fakegithub

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

func TestCommentsAndPagination(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	pr := f.openPR(t, "topic", map[string]string{"x": "1\n"})
	n := pr.GetNumber()
	for i := range 5 {
		c, _, err := f.app.Issues.CreateComment(ctx, owner, name, n, &github.IssueComment{Body: github.String(fmt.Sprintf("c%d", i))})
		if err != nil || c.GetUser().GetLogin() != f.s.BotLogin() {
			t.Fatalf("comment %d = %v, %v", i, c, err)
		}
		f.clock.Add(time.Minute)
	}
	if _, err := f.s.Comment(owner, name, n, "alice", "/canary resume"); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 4}}
	pages := 0
	for {
		cs, resp, err := f.app.Issues.ListComments(ctx, owner, name, n, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, c := range cs {
			bodies = append(bodies, c.GetBody())
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if pages != 2 || fmt.Sprint(bodies) != "[c0 c1 c2 c3 c4 /canary resume]" {
		t.Errorf("%d pages: %v", pages, bodies)
	}
	since := f.clock.Now().Add(-90 * time.Second)
	recent, _, err := f.app.Issues.ListComments(ctx, owner, name, n, &github.IssueListCommentsOptions{Since: &since})
	if err != nil || len(recent) != 2 {
		t.Errorf("comments since %v: %d, %v; want 2", since, len(recent), err)
	}
	first, _, err := f.app.Issues.GetComment(ctx, owner, name, recent[0].GetID())
	if err != nil || first.GetBody() != "c4" {
		t.Errorf("get comment = %v, %v", first, err)
	}
	edited, _, err := f.app.Issues.EditComment(ctx, owner, name, first.GetID(), &github.IssueComment{Body: github.String("c4'")})
	if err != nil || edited.GetBody() != "c4'" {
		t.Errorf("edit = %v, %v", edited, err)
	}
	if _, _, err := f.userClient(t, "rita").Issues.EditComment(ctx, owner, name, first.GetID(), &github.IssueComment{Body: github.String("x")}); status(err) != http.StatusForbidden {
		t.Errorf("a reader editing the App's comment: %v, want 403", err)
	}
	if _, _, err := f.app.Issues.CreateComment(ctx, owner, name, 99, &github.IssueComment{Body: github.String("x")}); status(err) != http.StatusNotFound {
		t.Errorf("comment on a missing issue: %v, want 404", err)
	}
	if _, _, err := f.app.Issues.CreateComment(ctx, owner, name, n, &github.IssueComment{Body: github.String(" ")}); status(err) != 422 {
		t.Errorf("empty comment: %v, want 422", err)
	}
	if _, err := f.s.Comment(owner, name, n, "ghost", "x"); err == nil {
		t.Error("a comment by an unknown user succeeded")
	}
	issue, _, err := f.app.Issues.Get(ctx, owner, name, n)
	if err != nil || !issue.IsPullRequest() || issue.GetComments() != 6 {
		t.Errorf("issue view of the PR = %v, %v", issue, err)
	}
}

func TestLabels(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{WebhookSecret: secret})
	pr := f.openPR(t, "topic", map[string]string{"x": "1\n"})
	n := pr.GetNumber()
	labels, _, err := f.app.Issues.AddLabelsToIssue(ctx, owner, name, n, []string{"canarybot", "revert"})
	if err != nil || len(labels) != 2 || labels[0].GetName() != "canarybot" {
		t.Fatalf("add labels = %v, %v", labels, err)
	}
	if labels, _, err = f.app.Issues.AddLabelsToIssue(ctx, owner, name, n, []string{"revert"}); err != nil || len(labels) != 2 {
		t.Errorf("adding a label twice = %v, %v", labels, err)
	}
	if _, err := f.app.Issues.RemoveLabelForIssue(ctx, owner, name, n, "revert"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.app.Issues.RemoveLabelForIssue(ctx, owner, name, n, "revert"); status(err) != http.StatusNotFound {
		t.Errorf("removing a missing label: %v, want 404", err)
	}
	got, _, err := f.app.PullRequests.Get(ctx, owner, name, n)
	if err != nil || len(got.Labels) != 1 || got.Labels[0].GetName() != "canarybot" {
		t.Errorf("PR labels = %v, %v", got.Labels, err)
	}
	list, _, err := f.app.Issues.ListLabelsByIssue(ctx, owner, name, n, nil)
	if err != nil || len(list) != 1 {
		t.Errorf("list labels = %v, %v", list, err)
	}
	if _, _, err := f.userClient(t, "rita").Issues.AddLabelsToIssue(ctx, owner, name, n, []string{"x"}); status(err) != http.StatusForbidden {
		t.Errorf("labels by a reader: %v, want 403", err)
	}
	wait(t, f.s)
	var actions []string
	for _, d := range f.s.Deliveries() {
		if d.Event == "pull_request" { // not the push of the PR's branch
			actions = append(actions, d.Action)
		}
	}
	if fmt.Sprint(actions) != "[opened labeled labeled unlabeled]" {
		t.Errorf("pull_request actions %v", actions)
	}
	if got := f.s.CallCount("POST /repos/{owner}/{repo}/issues/{number}/labels"); got != 3 {
		t.Errorf("label calls = %d, want 3", got)
	}
}
