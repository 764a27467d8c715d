package fakegithub

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/canarybot/canarybot/pkg/github/webhook"
)

// pushes waits for the deliveries and returns the push events among them
// from the n-th delivery on, as go-github parses them. It also checks
// that each carries the fields GitHub always sends, false or empty.
func pushes(t *testing.T, s *Server, from int) ([]*github.PushEvent, []Delivery) {
	t.Helper()
	wait(t, s)
	var evs []*github.PushEvent
	var ds []Delivery
	for _, d := range s.Deliveries()[from:] {
		if d.Event != "push" {
			continue
		}
		raw, err := github.ParseWebHook(d.Event, d.Body)
		if err != nil {
			t.Fatalf("parse push: %v\n%s", err, d.Body)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(d.Body, &fields); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"ref", "before", "after", "created", "deleted", "forced", "base_ref", "compare",
			"commits", "head_commit", "repository", "pusher", "sender", "installation"} {
			if _, ok := fields[k]; !ok {
				t.Errorf("push payload has no %q: %s", k, d.Body)
			}
		}
		evs = append(evs, raw.(*github.PushEvent))
		ds = append(ds, d)
	}
	return evs, ds
}

// commitIDs lists the IDs of a push's commits.
func commitIDs(ev *github.PushEvent) []string {
	var ids []string
	for _, c := range ev.Commits {
		ids = append(ids, c.GetID())
	}
	return ids
}

func sameFiles(got []string, want ...string) bool {
	return slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want)))
}

// A person's git push over smart HTTP emits one push per branch it
// moved, with GitHub's payload, after the refs moved.
func TestHumanPushEmitsPush(t *testing.T) {
	f := newFixture(t, Options{InstallationID: 7})
	seedMain := git(t, f.bare, "rev-parse", "main")
	dir := filepath.Join(t.TempDir(), "clone")
	git(t, t.TempDir(), "clone", "--quiet", authURL(t, f.s, "alice", f.tok["alice"]), dir)
	writeFiles(t, dir, map[string]string{"apps/qwen/overlay/weights.yaml": "weight: 10\n", "apps/new/plan.yaml": "a\n"})
	git(t, dir, "rm", "--quiet", "README.md")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "--quiet", "-m", "first\n\nwith a body")
	writeFiles(t, dir, map[string]string{"apps/new/plan.yaml": "b\n"})
	git(t, dir, "commit", "--quiet", "-am", "second")
	git(t, dir, "push", "--quiet", "origin", "HEAD:main")
	head, first := git(t, dir, "rev-parse", "HEAD"), git(t, dir, "rev-parse", "HEAD~1")

	evs, ds := pushes(t, f.s, 0)
	if len(evs) != 1 {
		t.Fatalf("%d push deliveries after one push to main, want 1", len(evs))
	}
	ev := evs[0]
	if ev.GetRef() != "refs/heads/main" || ev.GetBefore() != seedMain || ev.GetAfter() != head ||
		ev.GetCreated() || ev.GetDeleted() || ev.GetForced() || ds[0].Action != "" {
		t.Errorf("push = ref %s %s..%s created %v deleted %v forced %v", ev.GetRef(), ev.GetBefore(), ev.GetAfter(),
			ev.GetCreated(), ev.GetDeleted(), ev.GetForced())
	}
	if ids := commitIDs(ev); !slices.Equal(ids, []string{first, head}) {
		t.Fatalf("commits %v, want [%s %s] (oldest first)", ids, first, head)
	}
	c0, c1 := ev.Commits[0], ev.Commits[1]
	if !sameFiles(c0.Added, "apps/new/plan.yaml") || !sameFiles(c0.Modified, "apps/qwen/overlay/weights.yaml") ||
		!sameFiles(c0.Removed, "README.md") || c0.GetMessage() != "first\n\nwith a body" || !c0.GetDistinct() {
		t.Errorf("first commit %+v", c0)
	}
	if !sameFiles(c1.Modified, "apps/new/plan.yaml") || len(c1.Added)+len(c1.Removed) != 0 || c1.GetMessage() != "second" {
		t.Errorf("second commit %+v", c1)
	}
	if a := c0.GetAuthor(); a.GetName() != "Human" || a.GetEmail() != "human@example.com" || c0.GetTimestamp().IsZero() ||
		c0.GetCommitter().GetName() != "Human" || c0.GetTreeID() == "" || !strings.HasSuffix(c0.GetURL(), "/acme/gitops/commit/"+first) {
		t.Errorf("first commit's metadata %+v", c0)
	}
	if hc := ev.GetHeadCommit(); hc.GetID() != head || !sameFiles(hc.Modified, "apps/new/plan.yaml") {
		t.Errorf("head_commit %+v", hc)
	}
	repo := ev.GetRepo()
	if ev.GetInstallation().GetID() != 7 || ev.GetSender().GetLogin() != "alice" || ev.GetPusher().GetName() != "alice" ||
		ev.GetPusher().GetEmail() != "alice@users.noreply.github.com" || repo.GetFullName() != "acme/gitops" ||
		repo.GetName() != "gitops" || repo.GetOwner().GetLogin() != "acme" || repo.GetOwner().GetName() != "acme" ||
		repo.GetDefaultBranch() != "main" || repo.GetCreatedAt().IsZero() || repo.GetURL() != repo.GetHTMLURL() {
		t.Errorf("push envelope: installation %d sender %s pusher %+v repository %+v", ev.GetInstallation().GetID(),
			ev.GetSender().GetLogin(), ev.GetPusher(), repo)
	}
	// canarybot's own parser reads it.
	parsed, err := webhook.Parse("push", ds[0].Body)
	if err != nil || parsed.Kind != webhook.KindPush || parsed.Installation != 7 || parsed.Owner != owner || parsed.Repo != name ||
		parsed.Push.Branch != "main" || parsed.Push.Head != head || parsed.Push.Truncated ||
		!sameFiles(parsed.Push.Paths, "apps/new/plan.yaml", "apps/qwen/overlay/weights.yaml", "README.md") {
		t.Errorf("canarybot parsed %+v %+v, %v", parsed, parsed.Push, err)
	}

	// One push creating two branches: one delivery each, created, listing
	// no commits (main has them), head_commit the tip.
	n := len(f.s.Deliveries())
	git(t, dir, "push", "--quiet", "origin", "HEAD:refs/heads/feature", "HEAD:refs/heads/other")
	evs, _ = pushes(t, f.s, n)
	var refs []string
	for _, ev := range evs {
		refs = append(refs, ev.GetRef())
		if !ev.GetCreated() || ev.GetDeleted() || ev.GetForced() || ev.GetBefore() != zeroSHA || ev.GetAfter() != head ||
			len(ev.Commits) != 0 || ev.GetHeadCommit().GetID() != head || ev.GetHeadCommit().GetDistinct() {
			t.Errorf("branch creation push %+v", ev)
		}
	}
	if !slices.Equal(refs, []string{"refs/heads/feature", "refs/heads/other"}) {
		t.Errorf("pushes for %v, want feature and other once each", refs)
	}

	// Deleting a branch.
	n = len(f.s.Deliveries())
	git(t, dir, "push", "--quiet", "origin", ":feature")
	evs, _ = pushes(t, f.s, n)
	if len(evs) != 1 || evs[0].GetRef() != "refs/heads/feature" || !evs[0].GetDeleted() || evs[0].GetCreated() ||
		evs[0].GetBefore() != head || evs[0].GetAfter() != zeroSHA || evs[0].HeadCommit != nil || len(evs[0].Commits) != 0 {
		t.Errorf("deletion pushes %+v", evs)
	}

	// A force push rewriting main's last commit.
	n = len(f.s.Deliveries())
	git(t, dir, "reset", "--quiet", "--hard", "HEAD~1")
	writeFiles(t, dir, map[string]string{"apps/new/plan.yaml": "c\n"})
	git(t, dir, "commit", "--quiet", "-am", "rewritten")
	git(t, dir, "push", "--quiet", "--force", "origin", "HEAD:main")
	rewritten := git(t, dir, "rev-parse", "HEAD")
	evs, ds = pushes(t, f.s, n)
	if len(evs) != 1 || !evs[0].GetForced() || evs[0].GetBefore() != head || evs[0].GetAfter() != rewritten ||
		!slices.Equal(commitIDs(evs[0]), []string{rewritten}) {
		t.Fatalf("force push %+v", evs)
	}
	if parsed, err := webhook.Parse("push", ds[0].Body); err != nil || !parsed.Push.Truncated {
		t.Errorf("canarybot parsed the force push as %+v, %v; want truncated", parsed.Push, err)
	}

	// No installation covers the repository: nothing is delivered.
	f.s.DeleteInstallation(7)
	n = len(f.s.Deliveries())
	writeFiles(t, dir, map[string]string{"late.txt": "x\n"})
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "--quiet", "-m", "late")
	git(t, dir, "push", "--quiet", "origin", "HEAD:main")
	if evs, _ := pushes(t, f.s, n); len(evs) != 0 {
		t.Errorf("%d push deliveries about a repository no installation covers", len(evs))
	}
}

// Branch moves through the API emit push too: a ref created, a pull
// request merged into its base, a forced ref update, a ref deleted.
func TestAPIBranchMovesEmitPush(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	main0 := git(t, f.bare, "rev-parse", "main")
	pr := f.openPR(t, "topic", map[string]string{"x": "1\n"})
	change := pr.GetHead().GetSHA()
	res, _, err := f.app.PullRequests.Merge(ctx, owner, name, pr.GetNumber(), "", &github.PullRequestOptions{MergeMethod: "merge"})
	if err != nil {
		t.Fatal(err)
	}
	merged := res.GetSHA()
	evs, _ := pushes(t, f.s, 0)
	if len(evs) != 2 {
		t.Fatalf("%d pushes after creating a branch and merging a PR, want 2", len(evs))
	}
	topic, main := evs[0], evs[1]
	if topic.GetRef() != "refs/heads/topic" || !topic.GetCreated() || topic.GetAfter() != change ||
		!slices.Equal(commitIDs(topic), []string{change}) || !topic.Commits[0].GetDistinct() ||
		!sameFiles(topic.Commits[0].Added, "x") || topic.GetSender().GetLogin() != f.s.BotLogin() ||
		topic.GetPusher().GetName() != f.s.BotLogin() {
		t.Errorf("branch created through git/refs: %+v", topic)
	}
	if main.GetRef() != "refs/heads/main" || main.GetBefore() != main0 || main.GetAfter() != merged || main.GetForced() ||
		main.GetCreated() || !slices.Equal(commitIDs(main), []string{change, merged}) ||
		main.GetInstallation().GetID() != f.s.InstallationID() || main.GetSender().GetLogin() != f.s.BotLogin() {
		t.Fatalf("push of the merge: %+v", main)
	}
	// The PR's commit was on topic already; the merge commit is new, and
	// GitHub ("web-flow") committed it.
	mc := main.GetHeadCommit()
	if main.Commits[0].GetDistinct() || !main.Commits[1].GetDistinct() || mc.GetID() != merged || !sameFiles(mc.Added, "x") ||
		mc.GetCommitter().GetLogin() != "web-flow" || !strings.HasPrefix(mc.GetMessage(), "Merge pull request #") {
		t.Errorf("merge commit in the push %+v", mc)
	}

	// A forced update through PATCH git/refs, then a deletion.
	n := len(f.s.Deliveries())
	alice := f.userClient(t, "alice")
	if _, _, err := alice.Git.UpdateRef(ctx, owner, name, &github.Reference{Ref: github.String("refs/heads/topic"),
		Object: &github.GitObject{SHA: github.String(main0)}}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Git.DeleteRef(ctx, owner, name, "heads/topic"); err != nil {
		t.Fatal(err)
	}
	evs, _ = pushes(t, f.s, n)
	if len(evs) != 2 {
		t.Fatalf("%d pushes after an update and a deletion, want 2", len(evs))
	}
	if up := evs[0]; !up.GetForced() || up.GetBefore() != change || up.GetAfter() != main0 || len(up.Commits) != 0 ||
		up.GetHeadCommit().GetID() != main0 || up.GetSender().GetLogin() != "alice" || up.GetHeadCommit().GetAuthor().GetLogin() != "acme" {
		t.Errorf("forced update: %+v", up)
	}
	if del := evs[1]; !del.GetDeleted() || del.GetBefore() != main0 || del.GetAfter() != zeroSHA || del.HeadCommit != nil {
		t.Errorf("deletion: %+v", del)
	}
}

// GET commits/{ref}/check-runs, as go-github's ListCheckRunsForRef reads
// it: by name, by status, paginated.
func TestListCheckRunsForRefFilters(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	pr := f.openPR(t, "topic", map[string]string{"x": "1\n"})
	head, main := pr.GetHead().GetSHA(), git(t, f.bare, "rev-parse", "main")
	create := func(check, sha string, done bool) *github.CheckRun {
		t.Helper()
		opts := github.CreateCheckRunOptions{Name: check, HeadSHA: sha}
		if done {
			opts.Conclusion = github.String("success")
		}
		cr, _, err := f.app.Checks.CreateCheckRun(ctx, owner, name, opts)
		if err != nil {
			t.Fatal(err)
		}
		return cr
	}
	gates := create("canary/gates", head, true)
	lint := create("lint", head, false)
	create("canary/gates", main, true)
	for _, tc := range []struct {
		opts *github.ListCheckRunsOptions
		want []int64
	}{
		{&github.ListCheckRunsOptions{CheckName: github.String("canary/gates")}, []int64{gates.GetID()}},
		{&github.ListCheckRunsOptions{Status: github.String("queued")}, []int64{lint.GetID()}},
		{&github.ListCheckRunsOptions{Status: github.String("completed"), CheckName: github.String("lint")}, nil},
	} {
		res, _, err := f.app.Checks.ListCheckRunsForRef(ctx, owner, name, head, tc.opts)
		var got []int64
		for _, cr := range res.CheckRuns {
			got = append(got, cr.GetID())
			if cr.GetHeadSHA() != head {
				t.Errorf("run %d is on %s, not %s", cr.GetID(), cr.GetHeadSHA(), head)
			}
		}
		if err != nil || res.GetTotal() != len(tc.want) || !slices.Equal(got, tc.want) {
			t.Errorf("list %+v: total %d runs %v, %v; want %v", tc.opts, res.GetTotal(), got, err, tc.want)
		}
	}
	res, resp, err := f.app.Checks.ListCheckRunsForRef(ctx, owner, name, head, &github.ListCheckRunsOptions{
		ListOptions: github.ListOptions{PerPage: 1}})
	if err != nil || res.GetTotal() != 2 || len(res.CheckRuns) != 1 || resp.NextPage != 2 {
		t.Errorf("first page of one: total %d, %d runs, next %d, %v", res.GetTotal(), len(res.CheckRuns), resp.NextPage, err)
	}
}
