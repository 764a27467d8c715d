package fakegithub

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

func TestGitDataWritesRealObjects(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	main := git(t, f.bare, "rev-parse", "main")

	bin := []byte{0, 1, 2, 0xff}
	blob, _, err := f.app.Git.CreateBlob(ctx, owner, name, &github.Blob{
		Content: github.String(base64.StdEncoding.EncodeToString(bin)), Encoding: github.String("base64")})
	if err != nil {
		t.Fatalf("create blob: %v", err)
	}
	if got := git(t, f.bare, "cat-file", "-s", blob.GetSHA()); got != "4" {
		t.Errorf("blob size in git = %s, want 4", got)
	}
	if _, _, err := f.app.Git.CreateBlob(ctx, owner, name, &github.Blob{Content: github.String("%%%"), Encoding: github.String("base64")}); status(err) != 422 {
		t.Errorf("invalid base64 blob: %v, want 422", err)
	}

	base, _, err := f.app.Git.GetCommit(ctx, owner, name, main)
	if err != nil {
		t.Fatal(err)
	}
	tree, _, err := f.app.Git.CreateTree(ctx, owner, name, base.GetTree().GetSHA(), []*github.TreeEntry{
		{Path: github.String("apps/qwen/overlay/weights.yaml"), Mode: github.String("100644"), Type: github.String("blob"), Content: github.String("weight: 10\n")},
		{Path: github.String("apps/new/deep/model.bin"), Mode: github.String("100644"), Type: github.String("blob"), SHA: blob.SHA},
		{Path: github.String("apps/qwen/base/isvc.yaml"), Mode: github.String("100644"), Type: github.String("blob")}, // sha: null deletes
	})
	if err != nil {
		t.Fatalf("create tree: %v", err)
	}
	cm, _, err := f.app.Git.CreateCommit(ctx, owner, name, &github.Commit{Message: github.String("step 1\n\nCanarybot-Step: 1"),
		Tree: tree, Parents: []*github.Commit{{SHA: github.String(main)}}}, nil)
	if err != nil {
		t.Fatalf("create commit: %v", err)
	}
	if !cm.GetVerification().GetVerified() || cm.GetVerification().GetReason() != "valid" {
		t.Errorf("App commit verification = %+v, want verified", cm.GetVerification())
	}
	if cm.GetAuthor().GetName() != f.s.BotLogin() || cm.GetCommitter().GetEmail() != "noreply@github.com" {
		t.Errorf("App commit author %v committer %v", cm.GetAuthor(), cm.GetCommitter())
	}
	if _, _, err := f.app.Git.GetRef(ctx, owner, name, "heads/canarybot/qwen"); status(err) != http.StatusNotFound {
		t.Errorf("missing ref: %v, want 404", err)
	}
	f.branch(t, f.app, "canarybot/qwen", cm.GetSHA())

	// The bare repository holds exactly what the API wrote.
	for _, tc := range []struct{ args, want string }{
		{"show canarybot/qwen:apps/qwen/overlay/weights.yaml", "weight: 10"},
		{"ls-tree -r --name-only canarybot/qwen", "README.md\napps/new/deep/model.bin\napps/qwen/overlay/weights.yaml"},
		{"log -1 --format=%B canarybot/qwen", "step 1\n\nCanarybot-Step: 1"},
		{"rev-parse canarybot/qwen^", main},
	} {
		if got := git(t, f.bare, strings.Fields(tc.args)...); got != tc.want {
			t.Errorf("git %s = %q, want %q", tc.args, got, tc.want)
		}
	}

	got, _, err := f.app.Git.GetCommit(ctx, owner, name, cm.GetSHA())
	if err != nil || got.GetMessage() != "step 1\n\nCanarybot-Step: 1" || len(got.Parents) != 1 || got.Parents[0].GetSHA() != main {
		t.Errorf("GET commit = %+v, %v", got, err)
	}
	rt, _, err := f.app.Git.GetTree(ctx, owner, name, "canarybot/qwen", true)
	if err != nil || len(rt.Entries) != 8 {
		t.Fatalf("recursive tree of the branch: %d entries, %v; want 8 (3 files, 5 dirs)", len(rt.Entries), err)
	}
	fc, _, _, err := f.app.Repositories.GetContents(ctx, owner, name, "apps/qwen/overlay/weights.yaml",
		&github.RepositoryContentGetOptions{Ref: "canarybot/qwen"})
	if err != nil {
		t.Fatalf("contents: %v", err)
	}
	if content, _ := fc.GetContent(); content != "weight: 10\n" {
		t.Errorf("contents = %q", content)
	}

}

func TestPersonalCommitsAreUnsigned(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	main := git(t, f.bare, "rev-parse", "main")
	alice := f.userClient(t, "alice")
	hc := f.commitFiles(t, alice, main, "by hand", map[string]string{"README.md": "hi\n"})
	if hc.GetVerification().GetVerified() || hc.GetAuthor().GetName() != "alice" {
		t.Errorf("personal commit verification %+v author %v", hc.GetVerification(), hc.GetAuthor())
	}
	// A reader cannot write objects.
	if _, _, err := f.userClient(t, "rita").Git.CreateBlob(ctx, owner, name, &github.Blob{Content: github.String("x")}); status(err) != http.StatusForbidden {
		t.Errorf("blob by a reader: %v, want 403", err)
	}
}

func TestRefUpdates(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	main := git(t, f.bare, "rev-parse", "main")
	a := f.commitFiles(t, f.app, main, "a", map[string]string{"a": "a\n"})
	b := f.commitFiles(t, f.app, main, "b", map[string]string{"b": "b\n"})
	aa := f.commitFiles(t, f.app, a.GetSHA(), "aa", map[string]string{"a": "aa\n"})
	f.branch(t, f.app, "topic", a.GetSHA())
	ref := func(sha string) *github.Reference {
		return &github.Reference{Ref: github.String("refs/heads/topic"), Object: &github.GitObject{SHA: github.String(sha)}}
	}
	tests := []struct {
		name    string
		sha     string
		force   bool
		status  int
		message string
	}{
		{"fast forward", aa.GetSHA(), false, 200, ""},
		{"not a fast forward", b.GetSHA(), false, 422, "Update is not a fast forward"},
		{"forced", b.GetSHA(), true, 200, ""},
		{"unknown object", strings.Repeat("1", 40), true, 422, "Object does not exist"},
	}
	for _, tc := range tests {
		_, _, err := f.app.Git.UpdateRef(ctx, owner, name, ref(tc.sha), tc.force)
		if got := code(err); got != tc.status || got != 200 && !strings.Contains(err.Error(), tc.message) {
			t.Errorf("%s: %v, want %d %q", tc.name, err, tc.status, tc.message)
		}
	}
	if got := git(t, f.bare, "rev-parse", "topic"); got != b.GetSHA() {
		t.Errorf("topic at %s, want %s", got, b.GetSHA())
	}
	if _, _, err := f.app.Git.CreateRef(ctx, owner, name, ref(a.GetSHA())); status(err) != 422 || !strings.Contains(err.Error(), "Reference already exists") {
		t.Errorf("create existing ref: %v", err)
	}
	list, _, err := f.app.Git.ListMatchingRefs(ctx, owner, name, &github.ReferenceListOptions{Ref: "heads/to"})
	if err != nil || len(list) != 1 || list[0].GetRef() != "refs/heads/topic" {
		t.Errorf("matching refs heads/to = %v, %v", list, err)
	}
	if _, err := f.app.Git.DeleteRef(ctx, owner, name, "heads/topic"); err != nil {
		t.Fatalf("delete ref: %v", err)
	}
	if out, err := gitErr(f.bare, "rev-parse", "--verify", "--quiet", "refs/heads/topic"); err == nil {
		t.Errorf("topic still exists at %s", out)
	}
	if _, err := f.app.Git.DeleteRef(ctx, owner, name, "heads/topic"); status(err) != 422 {
		t.Errorf("delete a missing ref: %v, want 422", err)
	}
	if _, _, err := f.app.Git.UpdateRef(ctx, owner, name, ref(a.GetSHA()), true); status(err) != 422 ||
		!strings.Contains(err.Error(), "Reference does not exist") {
		t.Errorf("update a missing ref: %v, want 422 Reference does not exist", err)
	}
}
