package gitops

import (
	"container/heap"
	"context"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// maxCachedCommits bounds the commits whose parents, tree and time are
// remembered (about 100 bytes each).
const maxCachedCommits = 1 << 18

// commitMeta is what history walks need of a commit.
type commitMeta struct {
	parents []plumbing.Hash
	tree    plumbing.Hash
	when    time.Time
}

// meta returns commit h's parents, tree and committer time, read once:
// history walks revisit the same commits for every plan, and reading a
// commit from go-git's store costs file-system calls each time. The
// caller holds st.mu.
func (st *store) meta(h plumbing.Hash) (commitMeta, error) {
	if m, ok := st.commits[h]; ok {
		return m, nil
	}
	c, err := st.repo.CommitObject(h)
	if err != nil {
		return commitMeta{}, fmt.Errorf("read commit %s: %w", short(h), err)
	}
	m := commitMeta{parents: c.ParentHashes, tree: c.TreeHash, when: c.Committer.When}
	if len(st.commits) >= maxCachedCommits {
		clear(st.commits)
	}
	st.commits[h] = m
	return m, nil
}

// walkItem is a commit waiting in a history walk.
type walkItem struct {
	hash plumbing.Hash
	when time.Time
}

// byTime orders a walk newest first, as git log does.
type byTime []walkItem

func (q byTime) Len() int           { return len(q) }
func (q byTime) Less(i, j int) bool { return q[i].when.After(q[j].when) }
func (q byTime) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *byTime) Push(x any)        { *q = append(*q, x.(walkItem)) }
func (q *byTime) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

// walk calls visit on from and every commit it descends from, newest
// committer time first, each once, until visit returns stop or an error.
// The caller holds st.mu.
func (st *store) walk(ctx context.Context, from plumbing.Hash, visit func(h plumbing.Hash, m commitMeta) (stop bool, err error)) error {
	m, err := st.meta(from)
	if err != nil {
		return err
	}
	q := &byTime{{hash: from, when: m.when}}
	seen := map[plumbing.Hash]bool{from: true}
	for q.Len() > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		it := heap.Pop(q).(walkItem)
		m, err := st.meta(it.hash)
		if err != nil {
			return err
		}
		if stop, err := visit(it.hash, m); stop || err != nil {
			return err
		}
		for _, p := range m.parents {
			if seen[p] {
				continue
			}
			seen[p] = true
			pm, err := st.meta(p)
			if err != nil {
				return err
			}
			heap.Push(q, walkItem{hash: p, when: pm.when})
		}
	}
	return nil
}
