package notify

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// Source reads the GitOps branch: its head as last fetched, its commits
// and their trees. It does no fetching; whoever drives the repository
// (the fleet, the engine) does, and pokes the Notifier.
type Source interface {
	// Head is the branch head as last fetched.
	Head(ctx context.Context) (string, error)
	// Commit reads the commit sha.
	Commit(ctx context.Context, sha string) (Commit, error)
	// FirstParent reads the first parent of sha; ok is false for a root
	// commit.
	FirstParent(ctx context.Context, sha string) (c Commit, ok bool, err error)
	// Tree is the files of rev.
	Tree(ctx context.Context, rev string) (canary.Tree, error)
	// Contains reports whether ancestor is rev or reachable from it; an
	// error when rev is not known locally.
	Contains(ctx context.Context, rev, ancestor string) (bool, error)
}

// GitReader is what GitSource needs of a gitops.Reader (or gitops.Repo,
// which embeds one).
type GitReader interface {
	Head(ctx context.Context) (string, error)
	Log(ctx context.Context, head string, limit int) ([]gitops.Commit, error)
	Tree(ctx context.Context, rev string) (canary.Tree, error)
	Contains(ctx context.Context, rev, ancestor string) (bool, error)
}

// GitSource is a Source over a gitops clone.
type GitSource struct{ R GitReader }

var _ Source = GitSource{}

// Head is the branch head as last fetched.
func (s GitSource) Head(ctx context.Context) (string, error) { return s.R.Head(ctx) }

// Tree is the files of rev.
func (s GitSource) Tree(ctx context.Context, rev string) (canary.Tree, error) {
	return s.R.Tree(ctx, rev)
}

// Contains reports whether ancestor is rev or reachable from it.
func (s GitSource) Contains(ctx context.Context, rev, ancestor string) (bool, error) {
	return s.R.Contains(ctx, rev, ancestor)
}

// Commit reads one commit: the first of a log from it.
func (s GitSource) Commit(ctx context.Context, sha string) (Commit, error) {
	return s.one(ctx, sha)
}

// FirstParent reads "<sha>^", the first parent; a root commit has none.
func (s GitSource) FirstParent(ctx context.Context, sha string) (Commit, bool, error) {
	c, err := s.one(ctx, sha+"^")
	if errors.Is(err, io.EOF) { // go-git's answer for the parent of a root commit
		return Commit{}, false, nil
	}
	if err != nil {
		return Commit{}, false, err
	}
	return c, true, nil
}

func (s GitSource) one(ctx context.Context, rev string) (Commit, error) {
	log, err := s.R.Log(ctx, rev, 1)
	if err != nil {
		return Commit{}, err
	}
	if len(log) == 0 {
		return Commit{}, fmt.Errorf("read commit %s: %w", rev, gitops.ErrUnknownRevision)
	}
	c := log[0]
	return Commit{SHA: c.SHA, Time: c.Time, Trailers: c.Trailers}, nil
}

// Cursors keeps, per channel, the last commit whose events were all
// delivered.
type Cursors interface {
	// Cursor returns the channel's cursor, "" when it has none.
	Cursor(ctx context.Context, channel string) (string, error)
	// SetCursor moves the channel's cursor from old ("" for none) to new,
	// as a compare-and-swap: it fails when the cursor is not at old.
	SetCursor(ctx context.Context, channel, old, new string) error
}

// CursorRefPrefix is where cursors live on the remote.
const CursorRefPrefix = "refs/canarybot/notified/"

// CursorRef is the ref holding channel's cursor.
func CursorRef(channel string) string { return CursorRefPrefix + channel }

// RefStore reads and moves refs on the GitOps remote itself, so that the
// cursors survive the bot's pod and are shared by its replicas.
// *gitops.Repo implements it (UpdateRef, RemoteRef).
type RefStore interface {
	// RemoteRef returns the SHA the remote's ref holds, "" when the ref is
	// absent. It asks the remote, not the clone.
	RemoteRef(ctx context.Context, ref string) (string, error)
	// UpdateRef moves the remote's ref from old to new as a
	// compare-and-swap: old "" means the ref must be absent, new "" deletes
	// it. It fails (with gitops.ErrNonFastForward) when the remote holds
	// anything else, and succeeds at once when it already holds new.
	UpdateRef(ctx context.Context, ref, old, new string) error
}

var _ RefStore = (*gitops.Repo)(nil)

// RefCursors keeps cursors as refs on the remote.
type RefCursors struct{ Refs RefStore }

var _ Cursors = RefCursors{}

// Cursor reads refs/canarybot/notified/<channel> on the remote.
func (c RefCursors) Cursor(ctx context.Context, channel string) (string, error) {
	sha, err := c.Refs.RemoteRef(ctx, CursorRef(channel))
	if err != nil {
		return "", fmt.Errorf("read cursor %s: %w", CursorRef(channel), err)
	}
	return sha, nil
}

// SetCursor moves refs/canarybot/notified/<channel> on the remote.
func (c RefCursors) SetCursor(ctx context.Context, channel, old, new string) error {
	if err := c.Refs.UpdateRef(ctx, CursorRef(channel), old, new); err != nil {
		return fmt.Errorf("move cursor %s to %.12s: %w", CursorRef(channel), new, err)
	}
	return nil
}
