package sim

import (
	"context"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestSimRepoTracksCommitsByPath(t *testing.T) {
	sc := mustScenario(t, "name: r\ntraffic: {rps: 1, maxDuration: 1m}\nstable: {}\nexpect: promote\n")
	w, err := NewWorld(sc, 1, Epoch())
	if err != nil {
		t.Fatal(err)
	}
	repo := &simRepo{dir: t.TempDir(), world: w}
	ctx := context.Background()
	commit := func(files map[string]string) canary.CommitResult {
		t.Helper()
		res, err := repo.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
			ch := &canary.Change{Files: map[string][]byte{}}
			for p, b := range files {
				ch.Files[p] = []byte(b)
			}
			return ch, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	commit(map[string]string{"overlays/m/canarybot/a.yaml": "1", "state.yaml": "1"}) // 1
	commit(map[string]string{"state.yaml": "2"})                                     // 2
	if res := commit(map[string]string{"state.yaml": "2"}); !res.NoOp || res.SHA != "2" {
		t.Errorf("an identical change must be a no-op: %+v", res)
	}
	commit(map[string]string{"overlays/m/canarybotx/b.yaml": "1"}) // 3
	for head, want := range map[string]string{"3": "1", "1": "1", "0": ""} {
		if got, err := repo.LastCommit(ctx, head, "overlays/m/canarybot"); err != nil || got != want {
			t.Errorf("LastCommit(%s) = %q, %v; want %q", head, got, err, want)
		}
	}
	if ok, _ := repo.Contains(ctx, "3", "1"); !ok {
		t.Error("3 must contain 1")
	}
	if ok, _ := repo.Contains(ctx, "1", "3"); ok {
		t.Error("1 must not contain 3")
	}
	if _, err := repo.LastCommit(ctx, "9"); err == nil {
		t.Error("an unknown head must fail")
	}
	if _, err := repo.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
		return &canary.Change{Files: map[string][]byte{"../escape": nil}}, nil
	}); err == nil {
		t.Error("a path outside the repo must fail")
	}
}
