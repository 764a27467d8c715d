package gitops

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/canarybot/canarybot/pkg/canary"
)

// TestPushSendsExactlyWhatTheCommitsWrote pushes a batch of commits over
// the real git http-backend and checks that the pack held what git itself
// says the commits added (rev-list --objects old..new), that the remote
// is whole (fsck), and that nothing of the older history was sent again.
func TestPushSendsExactlyWhatTheCommitsWrote(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	history := map[string]string{}
	for i := range 40 {
		history[fmt.Sprintf("apps/m%02d/overlay/weights.yaml", i)] = fmt.Sprintf("weight: %d\n", i)
	}
	rm.humanCommit(t, "forty models", history)
	old := rm.head(t)
	url, _ := rm.serveHTTP(t, "s3cret")
	r := openRepo(t, Options{URL: url, Token: "s3cret", Dir: filepath.Join(t.TempDir(), "clone")})
	if _, err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	tip := old
	for i, p := range []string{"apps/m03/overlay/weights.yaml", "apps/m03/overlay/canarybot/split.yaml", "README.md"} {
		sha, err := r.commitChange(ctx, tip, &canary.Change{Subject: fmt.Sprintf("change %d", i),
			Files: map[string][]byte{p: []byte(fmt.Sprintf("step: %d\n", i))}})
		if err != nil || sha == "" {
			t.Fatalf("commit %d: %q, %v", i, sha, err)
		}
		tip = sha
	}
	r.st.mu.Lock()
	hashes, err := r.newObjects(ctx, plumbing.NewHash(tip), plumbing.NewHash(old))
	r.st.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	// 3 commits; the first two rewrite root, apps, apps/m03 and its overlay
	// (plus overlay/canarybot in the second), the third only the root;
	// one blob each.
	if len(hashes) != 3+4+5+1+3 {
		t.Errorf("%d objects to send, want 16", len(hashes))
	}
	if err := r.push(ctx, old, tip); err != nil {
		t.Fatal(err)
	}
	if got := rm.head(t); got != tip {
		t.Fatalf("remote at %s, want %s", got, tip)
	}
	var want []string
	for _, line := range strings.Split(runGit(t, rm.bare, "rev-list", "--objects", old+".."+tip), "\n") {
		want = append(want, strings.Fields(line)[0])
	}
	var got []string
	for _, h := range hashes {
		got = append(got, h.String())
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("sent %v\ngit says the commits added %v", got, want)
	}
	runGit(t, rm.bare, "fsck", "--strict", "--no-dangling")
}

// TestPushIsACompareAndSwap: a push built on a head the remote no longer
// holds is refused as ErrNonFastForward before any pack is sent, and a
// push whose commit the remote already holds (an answer lost on the way
// back) succeeds without sending anything.
func TestPushIsACompareAndSwap(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	url, _ := rm.serveHTTP(t, "s3cret")
	r := openRepo(t, Options{URL: url, Token: "s3cret", Dir: filepath.Join(t.TempDir(), "clone")})
	old, err := r.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sha, err := r.commitChange(ctx, old, &canary.Change{Subject: "ours", Files: map[string][]byte{"a.txt": []byte("a\n")}})
	if err != nil {
		t.Fatal(err)
	}
	theirs := rm.humanCommit(t, "theirs", map[string]string{"b.txt": "b\n"})
	err = r.push(ctx, old, sha)
	if !errors.Is(err, ErrNonFastForward) {
		t.Fatalf("push on a moved branch: %v, want ErrNonFastForward", err)
	}
	if got := rm.head(t); got != theirs {
		t.Fatalf("remote moved to %s by a refused push", got)
	}
	probe := exec.Command("git", "cat-file", "-e", sha)
	probe.Dir, probe.Env = rm.bare, gitEnv(t.TempDir())
	if probe.Run() == nil {
		t.Fatalf("the refused push sent %s anyway", sha)
	}

	head, err := r.Fetch(ctx)
	if err != nil || head != theirs {
		t.Fatalf("fetch: %s, %v", head, err)
	}
	sha, err = r.commitChange(ctx, head, &canary.Change{Subject: "ours again", Files: map[string][]byte{"a.txt": []byte("a\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.push(ctx, head, sha); err != nil {
		t.Fatal(err)
	}
	if err := r.push(ctx, head, sha); err != nil {
		t.Fatalf("pushing a commit the remote already holds: %v", err)
	}
	if got := rm.head(t); got != sha {
		t.Fatalf("remote at %s, want %s", got, sha)
	}
}

// UpdateRef creates, moves and refuses to move a ref outside refs/heads/
// as a compare-and-swap, sending no objects; RemoteRef reads it back.
func TestUpdateRefIsACompareAndSwap(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	url, _ := rm.serveHTTP(t, "s3cret")
	r := openRepo(t, Options{URL: url, Token: "s3cret", Dir: filepath.Join(t.TempDir(), "clone")})
	first, err := r.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const ref = "refs/canarybot/notified/slack"
	if got, err := r.RemoteRef(ctx, ref); err != nil || got != "" {
		t.Fatalf("a missing ref: %q, %v", got, err)
	}
	if err := r.UpdateRef(ctx, ref, "", first); err != nil {
		t.Fatal(err)
	}
	second := rm.humanCommit(t, "more", map[string]string{"b.txt": "b\n"})
	if _, err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateRef(ctx, ref, "", second); !errors.Is(err, ErrNonFastForward) {
		t.Fatalf("creating a ref that exists: %v, want ErrNonFastForward", err)
	}
	if err := r.UpdateRef(ctx, ref, first, second); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateRef(ctx, ref, first, second); err != nil {
		t.Fatalf("the same update again (its answer lost): %v", err)
	}
	if err := r.UpdateRef(ctx, ref, first, first); !errors.Is(err, ErrNonFastForward) {
		t.Fatalf("moving a ref from where it no longer is: %v, want ErrNonFastForward", err)
	}
	if got, err := r.RemoteRef(ctx, ref); err != nil || got != second {
		t.Fatalf("RemoteRef: %q, %v; want %s", got, err, second)
	}
	if got := runGit(t, rm.bare, "rev-parse", ref); got != second {
		t.Fatalf("the remote's %s is %s, want %s", ref, got, second)
	}
	for _, bad := range [][2]string{{"refs/heads/main", second}, {"notes", second}, {ref, "HEAD"}} {
		if err := r.UpdateRef(ctx, bad[0], "", bad[1]); err == nil || !canary.IsTerminal(err) {
			t.Errorf("UpdateRef(%q, %q): %v, want a terminal refusal", bad[0], bad[1], err)
		}
	}
}
