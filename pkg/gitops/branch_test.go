package gitops

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

// PushBranch puts a commit of the change on top of a base onto a side
// branch, over smart HTTP, replacing what the branch held; DeleteBranch
// removes it (and is quiet when it is gone). The branch Transact writes is
// refused, and main never moves.
func TestPushAndDeleteASideBranch(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	url, _ := rm.serveHTTP(t, "s3cret")
	r := openRepo(t, Options{URL: url, Token: "s3cret", Dir: filepath.Join(t.TempDir(), "clone")})
	tr, err := r.Checkout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	main := rm.head(t)
	ch := &canary.Change{Subject: "canary(qwen): step 1", Files: map[string][]byte{"overlays/qwen/canarybot/split.yaml": []byte("weight: 10\n")}}
	first, err := r.PushBranch(ctx, tr.Head, ch, "canarybot/qwen/abc")
	if err != nil {
		t.Fatal(err)
	}
	if got := runGit(t, rm.bare, "rev-parse", "refs/heads/canarybot/qwen/abc"); got != first {
		t.Fatalf("branch at %s, want %s", got, first)
	}
	if parent := runGit(t, rm.bare, "rev-parse", first+"^"); parent != tr.Head {
		t.Fatalf("commit's parent %s, want the base %s", parent, tr.Head)
	}
	if got := rm.show(t, first, "overlays/qwen/canarybot/split.yaml"); got != "weight: 10" {
		t.Fatalf("file on the branch: %q", got)
	}
	// Proposed again (a moved base, a new subject): the branch is replaced.
	rm.humanCommit(t, "unrelated", map[string]string{"docs/a.md": "a\n"})
	tr, err = r.Checkout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch.Subject = "canary(qwen): step 1, again"
	second, err := r.PushBranch(ctx, tr.Head, ch, "canarybot/qwen/abc")
	if err != nil || second == first {
		t.Fatalf("second push: %s, %v", second, err)
	}
	if got := runGit(t, rm.bare, "rev-parse", "refs/heads/canarybot/qwen/abc"); got != second {
		t.Fatalf("branch at %s after the second push, want %s", got, second)
	}
	if sha, err := r.PushBranch(ctx, tr.Head, &canary.Change{Subject: "x", Files: map[string][]byte{"docs/a.md": []byte("a\n")}},
		"canarybot/noop"); err != nil || sha != "" {
		t.Fatalf("a change that changes nothing: %q, %v; want no commit", sha, err)
	}
	if err := r.DeleteBranch(ctx, "canarybot/qwen/abc"); err != nil {
		t.Fatal(err)
	}
	if out := runGit(t, rm.bare, "branch", "--list", "canarybot/*"); out != "" {
		t.Fatalf("branches left: %q", out)
	}
	if err := r.DeleteBranch(ctx, "canarybot/qwen/abc"); err != nil {
		t.Fatalf("deleting a gone branch: %v", err)
	}
	for _, bad := range []string{"main", "", "a..b", "x~1"} {
		if _, err := r.PushBranch(ctx, tr.Head, ch, bad); err == nil || !canary.IsTerminal(err) {
			t.Errorf("PushBranch(%q): %v, want a terminal refusal", bad, err)
		}
	}
	if err := r.DeleteBranch(ctx, "main"); !errors.Is(err, ErrOwnBranch) {
		t.Errorf("DeleteBranch(main): %v, want ErrOwnBranch", err)
	}
	if head := rm.head(t); !strings.HasPrefix(runGit(t, rm.bare, "log", "--format=%s", "-1", head), "unrelated") || head == main {
		t.Fatalf("main moved by a side-branch operation: %s", head)
	}
}
