package gitops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"

	"github.com/canarybot/canarybot/pkg/canary"
)

// maxPushCommits bounds the commits one push may carry: a batch is a
// handful of transitions, never a history.
const maxPushCommits = 10000

// update is one ref update for sendPack.
type update struct {
	// branch is the remote branch; ref, when set, a full ref name instead.
	branch string
	ref    plumbing.ReferenceName
	// sha is the new value; "" deletes the branch.
	sha string
	// base is a commit the remote already has that sha descends from:
	// the pack carries the commits from sha back to base, exclusive, and
	// the trees and blobs they changed, nothing else.
	base string
	// expect, when set, is the value the remote branch must hold: a
	// compare-and-swap. The push is refused with ErrNonFastForward when
	// the remote holds anything else (unless it already holds sha).
	// When empty, the branch is replaced whatever it holds.
	expect string
}

// zeroRef, as update.expect, says the ref must not exist yet.
const zeroRef = "0000000000000000000000000000000000000000"

// sendPack applies u on origin over the receive-pack protocol, sending a
// pack of exactly the objects u's commits wrote. go-git's Remote.Push
// instead walks the whole history reachable from the remote's refs to
// choose what to send, which grows with every commit; this costs what the
// change costs. The object store is locked only while the pack is built,
// never during the network round trips.
func (r *Repo) sendPack(ctx context.Context, u update) error {
	auth, err := r.opts.auth(ctx)
	if err != nil {
		return err
	}
	ep, err := transport.NewEndpoint(r.opts.URL)
	if err != nil {
		return fmt.Errorf("parse URL: %w", err)
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return err
	}
	sess, err := cl.NewReceivePackSession(ep, auth)
	if err != nil {
		return err
	}
	defer sess.Close()
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil && !errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return fmt.Errorf("list remote refs: %w", err)
	}
	ref := u.ref
	if ref == "" {
		ref = plumbing.NewBranchReferenceName(u.branch)
	}
	old := advertised(adv, ref)
	switch {
	case u.sha != "" && old.String() == u.sha:
		return nil // already there: an earlier push whose answer was lost
	case u.sha == "" && old.IsZero():
		return nil // nothing to delete
	case u.expect == zeroRef && !old.IsZero(), u.expect != "" && u.expect != zeroRef && old.String() != u.expect:
		return &nonFastForward{err: fmt.Errorf("the remote branch is at %s, not %s: fetch first",
			short(old), short(plumbing.NewHash(u.expect)))}
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(advCaps(adv))
	cmd := &packp.Command{Name: ref, Old: old, New: plumbing.ZeroHash}
	if u.sha != "" {
		cmd.New = plumbing.NewHash(u.sha)
		pack, err := r.packFor(ctx, cmd.New, plumbing.NewHash(u.base), !advCaps(adv).Supports(capability.OFSDelta))
		if err != nil {
			return err
		}
		req.Packfile = io.NopCloser(bytes.NewReader(pack))
	}
	req.Commands = []*packp.Command{cmd}
	report, err := sess.ReceivePack(ctx, req)
	if err != nil {
		return err
	}
	if report == nil {
		return errors.New("the remote sent no report")
	}
	return report.Error()
}

// advertised is ref's value in adv, zero when absent.
func advertised(adv *packp.AdvRefs, ref plumbing.ReferenceName) plumbing.Hash {
	if adv == nil {
		return plumbing.ZeroHash
	}
	if h, ok := adv.References[ref.String()]; ok {
		return h
	}
	if adv.Head != nil && ref == plumbing.HEAD {
		return *adv.Head
	}
	return plumbing.ZeroHash
}

func advCaps(adv *packp.AdvRefs) *capability.List {
	if adv == nil || adv.Capabilities == nil {
		return capability.NewList()
	}
	return adv.Capabilities
}

// packFor encodes a pack of the commits from tip back to base, exclusive,
// with the trees and blobs each changed against its first parent.
func (r *Repo) packFor(ctx context.Context, tip, base plumbing.Hash, refDeltas bool) ([]byte, error) {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	hashes, err := r.newObjects(ctx, tip, base)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := packfile.NewEncoder(&buf, r.repo.Storer, refDeltas).Encode(hashes, 0); err != nil {
		return nil, fmt.Errorf("encode pack of %d objects: %w", len(hashes), err)
	}
	return buf.Bytes(), nil
}

// newObjects lists the objects the commits from tip back to base wrote.
// The caller holds r.st.mu.
func (r *Repo) newObjects(ctx context.Context, tip, base plumbing.Hash) ([]plumbing.Hash, error) {
	var out []plumbing.Hash
	seen := map[plumbing.Hash]bool{}
	for h, n := tip, 0; h != base; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if n == maxPushCommits {
			return nil, fmt.Errorf("%s is more than %d commits ahead of %s", short(tip), maxPushCommits, short(base))
		}
		c, err := r.repo.CommitObject(h)
		if err != nil {
			return nil, fmt.Errorf("read commit %s: %w", short(h), err)
		}
		out = append(out, h)
		parentTree := plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			p, err := r.repo.CommitObject(c.ParentHashes[0])
			if err != nil {
				return nil, fmt.Errorf("read commit %s: %w", short(c.ParentHashes[0]), err)
			}
			parentTree = p.TreeHash
		} else if !base.IsZero() {
			return nil, fmt.Errorf("%s does not descend from %s", short(tip), short(base))
		}
		if out, err = r.treeDiff(parentTree, c.TreeHash, seen, out); err != nil {
			return nil, err
		}
		if len(c.ParentHashes) == 0 {
			break
		}
		h = c.ParentHashes[0]
	}
	return out, nil
}

// treeDiff appends to out the trees and blobs of tree that old does not
// have at the same path, recursing only into subtrees that differ.
func (r *Repo) treeDiff(old, tree plumbing.Hash, seen map[plumbing.Hash]bool, out []plumbing.Hash) ([]plumbing.Hash, error) {
	if old == tree || seen[tree] {
		return out, nil
	}
	seen[tree] = true
	out = append(out, tree)
	t, err := r.repo.TreeObject(tree)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", short(tree), err)
	}
	before := map[string]plumbing.Hash{}
	if !old.IsZero() {
		o, err := r.repo.TreeObject(old)
		if err != nil {
			return nil, fmt.Errorf("read tree %s: %w", short(old), err)
		}
		for _, e := range o.Entries {
			if e.Mode == filemode.Dir {
				before[e.Name] = e.Hash
			} else if e.Mode != filemode.Submodule {
				before["\x00"+e.Name] = e.Hash
			}
		}
	}
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Submodule:
		case filemode.Dir:
			if out, err = r.treeDiff(before[e.Name], e.Hash, seen, out); err != nil {
				return nil, err
			}
		default:
			if before["\x00"+e.Name] != e.Hash && !seen[e.Hash] {
				seen[e.Hash] = true
				out = append(out, e.Hash)
			}
		}
	}
	return out, nil
}

// UpdateRef moves ref (a full name outside refs/heads/, such as
// refs/canarybot/notified/slack) on origin from old to sha, a commit the
// remote already has, as a compare-and-swap: it fails with
// ErrNonFastForward when the remote's ref is not at old ("" for a ref
// that must not exist yet). It sends no objects.
func (r *Repo) UpdateRef(ctx context.Context, ref, old, sha string) error {
	name := plumbing.ReferenceName(ref)
	if err := name.Validate(); err != nil || !strings.HasPrefix(ref, "refs/") || name.IsBranch() || !plumbing.IsHash(sha) {
		return canary.Terminal(fmt.Errorf("update ref %q to %q: want a full ref name outside refs/heads/ and a commit SHA", ref, sha))
	}
	expect := old
	if expect == "" {
		expect = zeroRef
	}
	err := r.sendPack(ctx, update{ref: name, sha: sha, base: sha, expect: expect})
	if err != nil {
		return fmt.Errorf("update %s: %w", ref, redactErr(err))
	}
	return nil
}

// RemoteRef returns the commit ref (a full name) points at on origin, or
// "" when it does not exist, from the remote's advertisement.
func (r *Reader) RemoteRef(ctx context.Context, ref string) (string, error) {
	auth, err := r.opts.auth(ctx)
	if err != nil {
		return "", err
	}
	ep, err := transport.NewEndpoint(r.opts.URL)
	if err != nil {
		return "", fmt.Errorf("parse URL: %w", redactErr(err))
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return "", err
	}
	sess, err := cl.NewUploadPackSession(ep, auth)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", ref, redactErr(err))
	}
	defer sess.Close()
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", ref, redactErr(err))
	}
	if h := advertised(adv, plumbing.ReferenceName(ref)); !h.IsZero() {
		return h.String(), nil
	}
	return "", nil
}
