package gitops

import (
	"fmt"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// maxCachedChanges bounds the commits whose changed paths are remembered.
const maxCachedChanges = 1 << 16

// changedPathsOf returns the paths of the files (and links, submodules)
// that c added, changed or removed against its first parent; every path
// of a root commit. It is computed once per commit, from cached trees:
// only subtrees whose hashes differ are read. The caller holds st.mu.
func (st *store) changedPathsOf(h plumbing.Hash, m commitMeta) ([]string, error) {
	if ps, ok := st.changes[h]; ok {
		return ps, nil
	}
	var parent plumbing.Hash
	if len(m.parents) > 0 {
		p, err := st.meta(m.parents[0])
		if err != nil {
			return nil, fmt.Errorf("read parent of %s: %w", short(h), err)
		}
		parent = p.tree
	}
	var out []string
	if err := st.diffTrees(parent, m.tree, "", &out); err != nil {
		return nil, err
	}
	if len(st.changes) >= maxCachedChanges {
		clear(st.changes)
	}
	st.changes[h] = out
	return out, nil
}

// diffTrees appends to out the paths under prefix that differ between
// trees a and b (either may be zero: empty).
func (st *store) diffTrees(a, b plumbing.Hash, prefix string, out *[]string) error {
	if a == b {
		return nil
	}
	ea, err := st.entries(a)
	if err != nil {
		return err
	}
	eb, err := st.entries(b)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(ea) || j < len(eb) {
		switch {
		case j == len(eb) || (i < len(ea) && ea[i].name < eb[j].name):
			if err := st.changedEntry(ea[i], treeEntry{}, prefix, out); err != nil {
				return err
			}
			i++
		case i == len(ea) || eb[j].name < ea[i].name:
			if err := st.changedEntry(treeEntry{}, eb[j], prefix, out); err != nil {
				return err
			}
			j++
		default:
			if ea[i].hash != eb[j].hash || ea[i].mode != eb[j].mode {
				if err := st.changedEntry(ea[i], eb[j], prefix, out); err != nil {
					return err
				}
			}
			i, j = i+1, j+1
		}
	}
	return nil
}

// changedEntry records one differing entry: a directory on either side is
// descended into, anything else is one changed path.
func (st *store) changedEntry(a, b treeEntry, prefix string, out *[]string) error {
	name := a.name
	if name == "" {
		name = b.name
	}
	p := path.Join(prefix, name)
	var da, db plumbing.Hash
	if a.mode == filemode.Dir {
		da = a.hash
	}
	if b.mode == filemode.Dir {
		db = b.hash
	}
	if (a.hash != plumbing.ZeroHash && a.mode != filemode.Dir) || (b.hash != plumbing.ZeroHash && b.mode != filemode.Dir) {
		*out = append(*out, p)
	}
	if !da.IsZero() || !db.IsZero() {
		return st.diffTrees(da, db, p, out)
	}
	return nil
}

// entries is tree h's entries; none for the zero hash.
func (st *store) entries(h plumbing.Hash) ([]treeEntry, error) {
	if h.IsZero() {
		return nil, nil
	}
	return st.tree(h)
}

// touchesAny reports whether changed (a commit's changed paths) holds a
// path at or under any of paths ("" is the whole tree).
func touchesAny(changed, paths []string) bool {
	for _, c := range changed {
		for _, p := range paths {
			if p == "" || c == p || strings.HasPrefix(c, p+"/") {
				return true
			}
		}
	}
	return false
}
