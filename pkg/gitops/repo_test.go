package gitops

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestOpenReusesPersistedDir(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	o := testOptions(t, rm.url)
	first := openRepo(t, o)
	res, err := first.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
		return weightChange(10), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	gitDir, err := os.Stat(filepath.Join(o.Dir, ".git"))
	if err != nil {
		t.Fatal(err)
	}

	// Leave the clone dirty, as a crash mid-transaction would, and let a
	// human move the branch on.
	weights := filepath.Join(o.Dir, "apps/llama/overlay/weights.yaml")
	if err := os.WriteFile(weights, []byte("half-written"), 0o644); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(o.Dir, "apps/llama/overlay/junk.yaml")
	if err := os.WriteFile(junk, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	human := rm.humanCommit(t, "human edit", map[string]string{"apps/llama/base/inference.yaml": "kind: InferenceService # edited\n"})

	second := openRepo(t, o) // resume: same Dir, no re-clone
	if after, _ := os.Stat(filepath.Join(o.Dir, ".git")); !os.SameFile(gitDir, after) {
		t.Errorf(".git was recreated instead of reused")
	}
	if head, err := second.Head(ctx); err != nil || head != res.SHA {
		t.Errorf("before fetch, Head = %s, %v; want the persisted %s", head, err, res.SHA)
	}
	tree, err := second.Checkout(ctx)
	if err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	if tree.Head != human || tree.Dir != second.Dir() {
		t.Errorf("tree %+v, want head %s", tree, human)
	}
	if b, _ := os.ReadFile(weights); string(b) != "weight: 10\n" {
		t.Errorf("tracked file not restored: %q", b)
	}
	if _, err := os.Stat(junk); !os.IsNotExist(err) {
		t.Errorf("untracked file survived checkout: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(o.Dir, "apps/llama/base/inference.yaml")); string(b) != "kind: InferenceService # edited\n" {
		t.Errorf("human edit not checked out: %q", b)
	}
}

func TestCheckoutDropsUnpushedCommit(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	seed := rm.head(t)
	r := openRepo(t, testOptions(t, rm.url))
	if _, err := r.Checkout(ctx); err != nil {
		t.Fatal(err)
	}
	tree := canary.Tree{Dir: r.Dir(), Head: seed}
	sha, err := r.commitChange(ctx, tree, &canary.Change{Files: map[string][]byte{"new/file.yaml": []byte("x\n")}, Subject: "never pushed"})
	if err != nil || sha == "" {
		t.Fatalf("local commit: %q, %v", sha, err)
	}
	got, err := r.Checkout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Head != seed {
		t.Errorf("head %s, want the remote's %s", got.Head, seed)
	}
	if _, err := os.Stat(filepath.Join(r.Dir(), "new/file.yaml")); !os.IsNotExist(err) {
		t.Errorf("file of the dropped commit survived: %v", err)
	}
	if h := runGit(t, r.Dir(), "rev-parse", "HEAD"); h != seed {
		t.Errorf("clone HEAD %s, want %s", h, seed)
	}
	if st := runGit(t, r.Dir(), "status", "--porcelain"); st != "" {
		t.Errorf("clone not clean:\n%s", st)
	}
}

func TestOpenRefusesForeignDirs(t *testing.T) {
	ctx := context.Background()
	rm, other := newRemote(t), newRemote(t)
	o := testOptions(t, rm.url)
	openRepo(t, o)

	o2 := o
	o2.URL = other.url
	if _, err := Open(ctx, o2); err == nil || !canary.IsTerminal(err) {
		t.Errorf("Open of a clone of another remote: err = %v, want terminal", err)
	}

	o3 := testOptions(t, rm.url)
	if err := os.MkdirAll(o3.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(o3.Dir, "precious.txt"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, o3); err == nil || !canary.IsTerminal(err) {
		t.Errorf("Open of a non-empty non-clone: err = %v, want terminal", err)
	}
	if b, _ := os.ReadFile(filepath.Join(o3.Dir, "precious.txt")); string(b) != "keep" {
		t.Errorf("Open touched a foreign dir")
	}

	for _, bad := range []Options{{URL: rm.url}, {Dir: t.TempDir()}, {URL: rm.url, Dir: t.TempDir(), Branch: "bad..name"}} {
		if _, err := Open(ctx, bad); err == nil {
			t.Errorf("Open(%+v) succeeded", bad)
		}
	}
}

func TestOpenPlainLocalPathAndBranch(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	runGit(t, rm.bare, "branch", "release", "main")
	o := testOptions(t, rm.bare) // a plain path, not file://
	o.Branch = "release"
	r := openRepo(t, o)
	res, err := r.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
		return weightChange(50), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := runGit(t, rm.bare, "rev-parse", "release"); got != res.SHA {
		t.Errorf("release = %s, want %s", got, res.SHA)
	}
	if got := rm.show(t, "main", "apps/llama/overlay/weights.yaml"); got != "weight: 0" {
		t.Errorf("main changed: %q", got)
	}
}
