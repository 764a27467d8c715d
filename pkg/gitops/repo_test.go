package gitops

import (
	"context"
	"errors"
	"io/fs"
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
	config, err := os.Stat(filepath.Join(o.Dir, "config"))
	if err != nil {
		t.Fatalf("want a bare clone: %v", err)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "apps")); !os.IsNotExist(err) {
		t.Errorf("the clone has a work tree: %v", err)
	}
	human := rm.humanCommit(t, "human edit", map[string]string{"apps/llama/base/inference.yaml": "kind: InferenceService # edited\n"})

	second := openRepo(t, o) // resume: same Dir, no re-clone
	if after, _ := os.Stat(filepath.Join(o.Dir, "config")); !os.SameFile(config, after) {
		t.Errorf("the clone was recreated instead of reused")
	}
	if head, err := second.Head(ctx); err != nil || head != res.SHA {
		t.Errorf("before fetch, Head = %s, %v; want the persisted %s", head, err, res.SHA)
	}
	tree, err := second.Checkout(ctx)
	if err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	if tree.Head != human {
		t.Errorf("tree head %s, want %s", tree.Head, human)
	}
	for p, want := range map[string]string{
		"apps/llama/overlay/weights.yaml": "weight: 10\n",
		"apps/llama/base/inference.yaml":  "kind: InferenceService # edited\n",
	} {
		if b, err := fs.ReadFile(tree.FS, p); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
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
	sha, err := r.commitChange(ctx, seed, &canary.Change{Files: map[string][]byte{"new/file.yaml": []byte("x\n")}, Subject: "never pushed"})
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
	if _, err := fs.Stat(got.FS, "new/file.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file of the dropped commit is in the tree: %v", err)
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
