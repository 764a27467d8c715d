package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/canarybot/canarybot/pkg/canary"
)

// commitLinks commits symbolic links (name → target) with the git CLI, as
// an attacker with push access to the GitOps repo could.
func (rm *remote) commitLinks(t *testing.T, links map[string]string) string {
	t.Helper()
	work := filepath.Join(t.TempDir(), "attacker")
	runGit(t, rm.root, "clone", "--quiet", rm.bare, work)
	for name, target := range links {
		full := filepath.Join(work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, full); err != nil {
			t.Fatal(err)
		}
	}
	runGit(t, work, "add", "-A")
	runGit(t, work, "commit", "--quiet", "-m", "links")
	runGit(t, work, "push", "--quiet", "origin", "HEAD:refs/heads/main")
	return runGit(t, work, "rev-parse", "HEAD")
}

func TestSnapshotRefusesSymlinksAndBoundsReads(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	outside := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(outside, []byte("apiVersion: canarybot.dev/v1alpha1\nkind: CanaryPlan\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rm.commitLinks(t, map[string]string{
		".canarybot/plans/zero.yaml":   "../../../../../../../../dev/zero",
		".canarybot/plans/secret.yaml": outside,
		".canarybot/plans/up.yaml":     "../../apps/llama/base/inference.yaml",
		"linkdir":                      "apps",
	})
	rm.humanCommit(t, "a big file", map[string]string{"big.yaml": strings.Repeat("x", MaxBlobBytes+1)})
	r := openRepo(t, testOptions(t, rm.url))
	tree, err := r.Checkout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".canarybot/plans/zero.yaml", ".canarybot/plans/secret.yaml",
		".canarybot/plans/up.yaml", "linkdir/llama/base/inference.yaml", "linkdir"} {
		if _, err := fs.ReadFile(tree.FS, p); !errors.Is(err, ErrSymlink) {
			t.Errorf("ReadFile(%s) = %v, want ErrSymlink", p, err)
		}
		if _, err := canary.ReadRepoFile(tree.FS, p, canary.MaxPlanBytes); err == nil {
			t.Errorf("ReadRepoFile(%s) read through a link", p)
		}
		if _, err := r.ReadFile(ctx, "", p); !errors.Is(err, ErrSymlink) {
			t.Errorf("Reader.ReadFile(%s) = %v, want ErrSymlink", p, err)
		}
	}
	if _, err := fs.ReadFile(tree.FS, "big.yaml"); err == nil || !strings.Contains(err.Error(), "over the") {
		t.Errorf("a file over MaxBlobBytes was read: %v", err)
	}
	_, err = canary.ReadRepoFile(tree.FS, "big.yaml", canary.MaxPlanBytes)
	if !errors.Is(err, canary.ErrTooLarge) || !canary.IsTerminal(err) {
		t.Errorf("ReadRepoFile of a big file = %v, want terminal ErrTooLarge", err)
	}
	if b, err := canary.ReadRepoFile(tree.FS, "apps/llama/base/inference.yaml", 100); err != nil || string(b) != "kind: InferenceService\n" {
		t.Errorf("a plain file: %q, %v", b, err)
	}
	entries, err := fs.ReadDir(tree.FS, ".canarybot/plans")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range entries {
		kinds = append(kinds, fmt.Sprintf("%s:%v", e.Name(), e.Type()))
	}
	if got := strings.Join(kinds, " "); got != "llama.yaml:---------- secret.yaml:L--------- up.yaml:L--------- zero.yaml:L---------" {
		t.Errorf("ReadDir = %s", got)
	}
}

func TestSnapshotIsAnFS(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	r := openRepo(t, testOptions(t, rm.url))
	tree, err := r.Checkout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for p := range seedFiles() {
		want = append(want, p)
	}
	if err := fstest.TestFS(tree.FS, want...); err != nil {
		t.Error(err)
	}
}

// TestSnapshotsReadWhileCommitting reads old and new snapshots from many
// goroutines while commits land; run with -race it proves that reads share
// nothing mutable with the write path.
func TestSnapshotsReadWhileCommitting(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	r := openRepo(t, testOptions(t, rm.url))
	first, err := r.Checkout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				b, err := fs.ReadFile(first.FS, "apps/llama/overlay/weights.yaml")
				if err != nil || string(b) != "weight: 0\n" {
					errs <- fmt.Errorf("reader %d: the first snapshot changed: %q, %v", i, b, err)
					return
				}
				if _, err := r.Tree(ctx, ""); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for w := 1; w <= 10; w++ {
		if _, err := r.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
			return weightChange(w), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := rm.show(t, "main", "apps/llama/overlay/weights.yaml"); got != "weight: 10" {
		t.Errorf("remote weights.yaml = %q", got)
	}
}
