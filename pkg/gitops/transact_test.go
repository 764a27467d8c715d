package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

func weightChange(weight int) *canary.Change {
	return &canary.Change{
		Files: map[string][]byte{
			"apps/llama/overlay/weights.yaml": []byte(fmt.Sprintf("weight: %d\n", weight)),
			canary.StatePath("llama"):         []byte(fmt.Sprintf("weight: %d\n", weight)),
			"README.md":                       []byte("gitops repo\n"), // unchanged
		},
		Subject:  fmt.Sprintf("canary llama: weight %d", weight),
		Body:     "Gates passed.",
		Trailers: []canary.Trailer{{Key: canary.TrailerPlan, Value: "llama"}, {Key: canary.TrailerStep, Value: "1"}},
	}
}

func TestTransactCommitsAndPushes(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	seed := rm.head(t)
	o := testOptions(t, rm.url)
	r := openRepo(t, o)

	var seen canary.Tree
	res, err := r.Transact(ctx, func(_ context.Context, tree canary.Tree) (*canary.Change, error) {
		seen = tree
		return weightChange(10), nil
	})
	if err != nil {
		t.Fatalf("Transact: %v", err)
	}
	if seen.Head != seed || seen.FS == nil {
		t.Errorf("fn saw %+v, want head %s and its files", seen, seed)
	}
	if b, err := fs.ReadFile(seen.FS, "README.md"); err != nil || string(b) != "gitops repo\n" {
		t.Errorf("tree: README = %q, %v", b, err)
	}
	if res.NoOp || res.Attempts != 1 || res.SHA != rm.head(t) {
		t.Fatalf("result %+v, remote head %s", res, rm.head(t))
	}
	if got := rm.show(t, "main", "apps/llama/overlay/weights.yaml"); got != "weight: 10" {
		t.Errorf("remote weights.yaml = %q", got)
	}
	if got := runGit(t, rm.bare, "rev-parse", "main^"); got != seed {
		t.Errorf("parent = %s, want seed %s", got, seed)
	}
	files := runGit(t, rm.bare, "diff-tree", "--no-commit-id", "--name-only", "-r", "main")
	if files != ".canarybot/state/llama.yaml\napps/llama/overlay/weights.yaml" {
		t.Errorf("commit changed:\n%s", files)
	}
	wantMsg := "canary llama: weight 10\n\nGates passed.\n\nCanarybot-Plan: llama\nCanarybot-Step: 1"
	if got := runGit(t, rm.bare, "log", "-1", "--format=%B", "main"); got != wantMsg {
		t.Errorf("message:\n%s\nwant:\n%s", got, wantMsg)
	}
	// git itself parses the trailers we wrote.
	if got := runGit(t, rm.bare, "log", "-1", "--format=%(trailers:key=Canarybot-Step,valueonly)", "main"); got != "1" {
		t.Errorf("git trailers: %q", got)
	}
	wantWho := fmt.Sprintf("canarybot %s %d", DefaultAuthorEmail, o.Clock.Now().Unix())
	if got := runGit(t, rm.bare, "log", "-1", "--format=%an %ae %at", "main"); got != wantWho {
		t.Errorf("author = %q, want %q", got, wantWho)
	}
}

func TestTransactNoOp(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	seed := rm.head(t)
	r := openRepo(t, testOptions(t, rm.url))

	same := &canary.Change{
		Files:   map[string][]byte{"README.md": []byte("gitops repo\n"), "apps/llama/overlay/weights.yaml": []byte("weight: 0\n")},
		Subject: "nothing to do",
	}
	for name, ch := range map[string]*canary.Change{"nil change": nil, "identical bytes": same} {
		calls := 0
		res, err := r.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
			calls++
			return ch, nil
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := canary.CommitResult{SHA: seed, NoOp: true, Attempts: 0}
		if res != want || calls != 1 {
			t.Errorf("%s: result %+v after %d calls, want %+v", name, res, calls, want)
		}
		if h := rm.head(t); h != seed {
			t.Errorf("%s: remote moved to %s", name, h)
		}
	}
	if n := runGit(t, rm.bare, "rev-list", "--count", "main"); n != "1" {
		t.Errorf("remote has %s commits, want 1", n)
	}
}

func TestTransactNonFastForwardRerenders(t *testing.T) {
	for _, transport := range []string{"file", "http"} {
		t.Run(transport, func(t *testing.T) {
			ctx := context.Background()
			rm := newRemote(t)
			url := rm.url
			oA, oB := testOptions(t, url), testOptions(t, url)
			if transport == "http" {
				url, _ = rm.serveHTTP(t, "s3cret")
				oA, oB = testOptions(t, url), testOptions(t, url)
				oA.Token, oB.Token = "s3cret", "s3cret"
			}
			a, b := openRepo(t, oA), openRepo(t, oB)

			var heads []string
			var aSHA string
			res, err := b.Transact(ctx, func(ctx context.Context, tree canary.Tree) (*canary.Change, error) {
				heads = append(heads, tree.Head)
				if len(heads) == 1 { // another writer lands between B's checkout and push
					ra, err := a.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
						return &canary.Change{Files: map[string][]byte{"apps/mistral/overlay/weights.yaml": []byte("weight: 5\n")}, Subject: "A"}, nil
					})
					if err != nil {
						return nil, err
					}
					aSHA = ra.SHA
				}
				// Re-render from the tree, as a Renderer would.
				mistral, err := fs.ReadFile(tree.FS, "apps/mistral/overlay/weights.yaml")
				if err != nil {
					return nil, err
				}
				return &canary.Change{Files: map[string][]byte{"apps/llama/overlay/weights.yaml": []byte("weight: 25\n# mistral " + string(mistral))}, Subject: "B"}, nil
			})
			if err != nil {
				t.Fatalf("B Transact: %v", err)
			}
			if len(heads) != 2 || heads[1] != aSHA {
				t.Fatalf("fn saw heads %v, want 2 calls, the second on A's %s", heads, aSHA)
			}
			if res.Attempts != 2 || res.NoOp || res.SHA != rm.head(t) {
				t.Errorf("result %+v, remote head %s", res, rm.head(t))
			}
			if got := runGit(t, rm.bare, "rev-parse", "main^"); got != aSHA {
				t.Errorf("B's parent = %s, want A's %s (linear history)", got, aSHA)
			}
			if got := rm.show(t, "main", "apps/llama/overlay/weights.yaml"); got != "weight: 25\n# mistral weight: 5" {
				t.Errorf("B did not re-render on A's tree: %q", got)
			}
			if n := runGit(t, rm.bare, "rev-list", "--count", "--merges", "main"); n != "0" {
				t.Errorf("%s merge commits", n)
			}
			if ok, err := b.Contains(ctx, res.SHA, aSHA); err != nil || !ok {
				t.Errorf("Contains(B, A) = %v, %v", ok, err)
			}
			if w := oB.Clock.(*fakeClock).Waits(); !reflect.DeepEqual(w, []time.Duration{200 * time.Millisecond}) {
				t.Errorf("backoff waits %v", w)
			}
		})
	}
}

func TestTransactGivesUpWithoutForcing(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	oB := testOptions(t, rm.url)
	oB.Retry = Retry{Attempts: 4, Initial: 200 * time.Millisecond, Max: 300 * time.Millisecond}
	a, b := openRepo(t, testOptions(t, rm.url)), openRepo(t, oB)

	calls := 0
	var lastA string
	res, err := b.Transact(ctx, func(ctx context.Context, _ canary.Tree) (*canary.Change, error) {
		calls++
		ra, err := a.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
			return &canary.Change{Files: map[string][]byte{"a.txt": []byte(fmt.Sprint(calls))}, Subject: "A"}, nil
		})
		lastA = ra.SHA
		return &canary.Change{Files: map[string][]byte{"b.txt": []byte("b")}, Subject: "B"}, err
	})
	if !errors.Is(err, ErrNonFastForward) {
		t.Fatalf("err = %v, want ErrNonFastForward", err)
	}
	if !strings.Contains(err.Error(), "push main") || !strings.Contains(err.Error(), "4 attempts") {
		t.Errorf("error lacks context: %v", err)
	}
	if calls != 4 || res.Attempts != 4 {
		t.Errorf("calls %d, attempts %d, want 4", calls, res.Attempts)
	}
	if h := rm.head(t); h != lastA {
		t.Errorf("remote head %s, want A's last commit %s: B must never force", h, lastA)
	}
	want := []time.Duration{200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}
	if w := oB.Clock.(*fakeClock).Waits(); !reflect.DeepEqual(w, want) {
		t.Errorf("waits %v, want %v", w, want)
	}
}

func TestTransactContextCancelledDuringBackoff(t *testing.T) {
	rm := newRemote(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	oB := testOptions(t, rm.url)
	waited := 0
	oB.Clock = canaryClockFunc(func(time.Duration) <-chan time.Time {
		waited++
		cancel()   // the context ends while Transact waits to retry
		return nil // and the clock never fires
	})
	a, b := openRepo(t, testOptions(t, rm.url)), openRepo(t, oB)
	res, err := b.Transact(ctx, func(ctx context.Context, _ canary.Tree) (*canary.Change, error) {
		_, err := a.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
			return &canary.Change{Files: map[string][]byte{"a.txt": []byte("a")}, Subject: "A"}, nil
		})
		return &canary.Change{Files: map[string][]byte{"b.txt": []byte("b")}, Subject: "B"}, err
	})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "wait to retry push") {
		t.Fatalf("err = %v, want context.Canceled while waiting", err)
	}
	if waited != 1 || res.Attempts != 1 {
		t.Errorf("waited %d times after %d attempts, want 1 and 1", waited, res.Attempts)
	}
}

// canaryClockFunc is a Clock whose After is a function.
type canaryClockFunc func(time.Duration) <-chan time.Time

func (canaryClockFunc) Now() time.Time                           { return time.Unix(0, 0).UTC() }
func (f canaryClockFunc) After(d time.Duration) <-chan time.Time { return f(d) }

func TestTransactRejectsUnsafePaths(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	seed := rm.head(t)
	r := openRepo(t, testOptions(t, rm.url))
	gitConfig, err := os.ReadFile(filepath.Join(r.Dir(), "config"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"../x", "/etc/passwd", ".git/config", ".GIT/config", "apps/.git/hooks/pre-commit",
		"a/../../x", "a//b", "./a", "a/", "", `a\..\x`, "git~1/config", ".git./config", "a\x00b",
	} {
		res, err := r.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
			return &canary.Change{Files: map[string][]byte{p: []byte("pwned\n"), "ok.txt": []byte("ok\n")}, Subject: "evil"}, nil
		})
		if !errors.Is(err, ErrUnsafePath) || !canary.IsTerminal(err) {
			t.Errorf("path %q: err = %v, want a terminal ErrUnsafePath", p, err)
		}
		if res.SHA != "" || res.Attempts != 0 {
			t.Errorf("path %q: result %+v", p, res)
		}
	}
	if h := rm.head(t); h != seed {
		t.Errorf("remote moved to %s", h)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(r.Dir()), "x")); !os.IsNotExist(err) {
		t.Errorf("a file escaped the clone: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(r.Dir(), "config")); string(after) != string(gitConfig) {
		t.Errorf(".git/config changed:\n%s", after)
	}
}

func TestTransactRefusesSymlinkEscape(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	outside := t.TempDir()
	work := filepath.Join(t.TempDir(), "human")
	runGit(t, rm.root, "clone", "--quiet", rm.bare, work)
	if err := os.Symlink(outside, filepath.Join(work, "link")); err != nil {
		t.Fatal(err)
	}
	runGit(t, work, "add", "link")
	runGit(t, work, "commit", "--quiet", "-m", "add a link")
	runGit(t, work, "push", "--quiet", "origin", "HEAD:main")
	head := rm.head(t)

	r := openRepo(t, testOptions(t, rm.url))
	for _, p := range []string{"link/evil", "link"} {
		_, err := r.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
			return &canary.Change{Files: map[string][]byte{p: []byte("pwned\n")}, Subject: "evil"}, nil
		})
		if !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%s: err = %v, want ErrUnsafePath", p, err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("wrote outside the clone: %v", entries)
	}
	if h := rm.head(t); h != head {
		t.Errorf("remote moved to %s", h)
	}
}

func TestTransactErrorsAreReturnedWrapped(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	seed := rm.head(t)
	r := openRepo(t, testOptions(t, rm.url))
	cause := errors.New("render failed")
	_, err := r.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
		return nil, canary.Terminal(cause)
	})
	if !errors.Is(err, cause) || !canary.IsTerminal(err) || !strings.Contains(err.Error(), seed) {
		t.Errorf("fn error: %v", err)
	}
	for _, ch := range []*canary.Change{
		{Files: map[string][]byte{"x": []byte("x")}, Subject: ""},
		{Files: map[string][]byte{"x": []byte("x")}, Subject: "two\nlines"},
		{Files: map[string][]byte{"x": []byte("x")}, Subject: "s", Trailers: []canary.Trailer{{Key: "Bad Key", Value: "v"}}},
		{Files: map[string][]byte{"x": []byte("x")}, Subject: "s", Trailers: []canary.Trailer{{Key: "K", Value: "a\nb"}}},
		{Files: map[string][]byte{"apps": []byte("x")}, Subject: "overwrite a directory"},
	} {
		_, err := r.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) { return ch, nil })
		if err == nil || !canary.IsTerminal(err) {
			t.Errorf("change %+v: err = %v, want terminal", ch, err)
		}
	}
	if h := rm.head(t); h != seed {
		t.Errorf("remote moved to %s", h)
	}
}

// Transactions that arrive while a push is under way go together into the
// next push, each its own commit on top of the one before: 20 plans moving
// at once cost 2 pushes, not 20, and each fn sees the commits before it.
func TestTransactGroupsConcurrentCommitsIntoOnePush(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	seed := rm.head(t)
	url, _, pushes := rm.serveHTTPCounting(t, "s3cret")
	o := testOptions(t, url)
	o.Token = "s3cret"
	r := openRepo(t, o)
	release := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]canary.CommitResult, 20)
	errs := make([]error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = r.Transact(ctx, func(_ context.Context, tree canary.Tree) (*canary.Change, error) {
				if i == 0 {
					<-release // hold the first push until the others queue up behind it
				}
				if i > 0 {
					if _, err := fs.Stat(tree.FS, "plans/0.yaml"); err != nil {
						return nil, fmt.Errorf("fn %d does not see the first commit: %w", i, err)
					}
				}
				return &canary.Change{Files: map[string][]byte{fmt.Sprintf("plans/%d.yaml", i): []byte("x\n")},
					Subject: fmt.Sprintf("plan %d", i)}, nil
			})
		}()
		if i == 0 {
			waitQueue(t, r, 0, true) // the first took its batch
		}
	}
	waitQueue(t, r, 19, false) // the others queue behind it
	close(release)
	wg.Wait()
	shas := map[string]bool{}
	for i := range 20 {
		if errs[i] != nil || results[i].NoOp || results[i].SHA == "" {
			t.Fatalf("transaction %d: %+v, %v", i, results[i], errs[i])
		}
		shas[results[i].SHA] = true
	}
	if len(shas) != 20 {
		t.Errorf("%d distinct commits, want 20", len(shas))
	}
	if n := runGit(t, rm.bare, "rev-list", "--count", seed+"..main"); n != "20" {
		t.Errorf("%s commits on the remote, want 20 (one per transaction)", n)
	}
	if n := pushes.Load(); n != 2 {
		t.Errorf("%d pushes, want 2: the first alone, the 19 queued behind it together", n)
	}
}

// waitQueue waits until n transactions wait for the next batch (and, with
// taken, until the running batch has emptied the queue).
func waitQueue(t *testing.T, r *Repo, n int, taken bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		r.qmu.Lock()
		got := len(r.queue)
		r.qmu.Unlock()
		if got != n {
			continue
		}
		if !taken {
			return
		}
		if len(r.pushing) == 1 {
			return // a batch holds the push lock
		}
	}
	t.Fatalf("the queue never held %d transactions", n)
}
