package gitops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Commit is one commit as `canarybot status` shows it.
type Commit struct {
	SHA string
	// Author is "Name <email>".
	Author string
	// Time is the author time.
	Time    time.Time
	Subject string
	// Message is the whole commit message.
	Message  string
	Trailers []canary.Trailer
}

// Trailer returns the last value of the trailer key (compared without
// case, as Git does) and whether it was present.
func (c Commit) Trailer(key string) (string, bool) {
	for i := len(c.Trailers) - 1; i >= 0; i-- {
		if strings.EqualFold(c.Trailers[i].Key, key) {
			return c.Trailers[i].Value, true
		}
	}
	return "", false
}

// Log returns up to limit commits reachable from head ("" for the branch
// head), newest first by committer time. limit <= 0 means all.
func (r *Reader) Log(ctx context.Context, head string, limit int) ([]Commit, error) {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	c, err := r.commit(ctx, head)
	if err != nil {
		return nil, err
	}
	iter := object.NewCommitIterCTime(c, nil, nil)
	defer iter.Close()
	var out []Commit
	for limit <= 0 || len(out) < limit {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := iter.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("walk log of %s: %w", head, err)
		}
		subject, _, _ := strings.Cut(c.Message, "\n")
		out = append(out, Commit{
			SHA:      c.Hash.String(),
			Author:   fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
			Time:     c.Author.When,
			Subject:  strings.TrimSpace(subject),
			Message:  c.Message,
			Trailers: ParseTrailers(c.Message),
		})
	}
	return out, nil
}

// LastCommit returns the newest commit reachable from head ("" for the
// branch head) whose tree differs from its first parent's at any of paths
// (files or directories), or "" when none does. A root commit counts as
// touching every path it contains. With no paths it returns head itself.
func (r *Reader) LastCommit(ctx context.Context, head string, paths ...string) (string, error) {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	c, err := r.commit(ctx, head)
	if err != nil {
		return "", err
	}
	if len(paths) == 0 {
		return c.Hash.String(), nil
	}
	clean := make([]string, len(paths))
	for i, p := range paths {
		clean[i] = strings.Trim(path.Clean("/"+p), "/")
	}
	key := strings.Join(clean, "\x00")
	known, cached := r.touched[key]
	found, err := r.lastTouching(ctx, c, clean, known, cached)
	if err != nil {
		return "", fmt.Errorf("walk log of %s: %w", head, err)
	}
	if len(r.touched) >= maxTouchCache {
		clear(r.touched)
	}
	r.touched[key] = touchEntry{head: c.Hash, sha: found}
	return found, nil
}

// touchEntry remembers LastCommit's answer for some paths at a head: a
// later call walks only the commits since, so that many plans asking
// about their own files after every commit cost what is new, not the
// whole history each time.
type touchEntry struct {
	head plumbing.Hash
	sha  string
}

const maxTouchCache = 1 << 16

// lastTouching walks from c, newest first, to the first commit touching
// paths; reaching known.head (when cached) ends the walk with its answer.
// The caller holds r.st.mu.
func (r *Reader) lastTouching(ctx context.Context, c *object.Commit, paths []string, known touchEntry, cached bool) (string, error) {
	found := ""
	err := r.st.walk(ctx, c.Hash, func(h plumbing.Hash, m commitMeta) (bool, error) {
		if cached && h == known.head {
			found = known.sha
			return true, nil
		}
		changed, err := r.st.changedPathsOf(h, m)
		if err != nil {
			return false, err
		}
		if touchesAny(changed, paths) {
			found = h.String()
			return true, nil
		}
		return false, nil
	})
	return found, err
}

// entryID identifies what a tree holds at a path; the zero value is absent.
type entryID struct {
	hash plumbing.Hash
	mode filemode.FileMode
}

// entryAt returns the entry at p in t ("" for t itself); nil t is empty.
func entryAt(t *object.Tree, p string) (entryID, error) {
	if t == nil {
		return entryID{}, nil
	}
	if p == "" {
		return entryID{hash: t.Hash, mode: filemode.Dir}, nil
	}
	parts := strings.Split(p, "/")
	for i, part := range parts {
		e, err := t.FindEntry(part)
		if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
			return entryID{}, nil
		}
		if err != nil {
			return entryID{}, fmt.Errorf("find %s in tree %s: %w", p, short(t.Hash), err)
		}
		if i == len(parts)-1 {
			return entryID{hash: e.Hash, mode: e.Mode}, nil
		}
		if e.Mode != filemode.Dir {
			return entryID{}, nil // a file where p needs a directory
		}
		if t, err = t.Tree(part); err != nil {
			return entryID{}, fmt.Errorf("read tree %s: %w", path.Join(parts[:i+1]...), err)
		}
	}
	return entryID{}, nil
}

// CommitTime is when commit sha landed: its committer time.
func (r *Reader) CommitTime(ctx context.Context, sha string) (time.Time, error) {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	c, err := r.commit(ctx, sha)
	if err != nil {
		return time.Time{}, err
	}
	return c.Committer.When, nil
}

// Contains reports whether ancestor is rev or reachable from it. A full
// SHA that is not in the object store is not reachable (the store holds
// all of rev's history); an unknown ref name is ErrUnknownRevision.
func (r *Reader) Contains(ctx context.Context, rev, ancestor string) (bool, error) {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	from, err := r.commit(ctx, rev)
	if err != nil {
		return false, err
	}
	target, err := r.commit(ctx, ancestor)
	if errors.Is(err, ErrUnknownRevision) && plumbing.IsHash(ancestor) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	found := false
	err = r.st.walk(ctx, from.Hash, func(h plumbing.Hash, _ commitMeta) (bool, error) {
		found = h == target.Hash
		return found, nil
	})
	return found, err
}

// ParseTrailers returns the trailers of a commit message: the lines of its
// last paragraph, when that is not the only paragraph and every line is
// "Key: Value" (a line starting with white space continues the previous
// value, and "#" lines are skipped). Otherwise it returns nil.
func ParseTrailers(message string) []canary.Trailer {
	msg := strings.TrimRight(strings.ReplaceAll(message, "\r\n", "\n"), " \t\n")
	lines := strings.Split(msg, "\n")
	start := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.TrimSpace(lines[i]) == "" {
			start = i + 1
			break
		}
	}
	if start <= 0 || start >= len(lines) {
		return nil
	}
	var out []canary.Trailer
	for _, line := range lines[start:] {
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t"):
			if len(out) == 0 {
				return nil
			}
			out[len(out)-1].Value += " " + strings.TrimSpace(line)
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok || !isTrailerKey(key) {
			return nil
		}
		out = append(out, canary.Trailer{Key: key, Value: strings.TrimSpace(value)})
	}
	return out
}

// isTrailerKey matches [A-Za-z0-9][A-Za-z0-9-]*.
func isTrailerKey(k string) bool {
	if k == "" || k[0] == '-' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// FormatMessage renders a change's commit message: the subject, a blank
// line, the body when there is one, a blank line, and one "Key: Value"
// line per trailer in order.
func FormatMessage(ch *canary.Change) (string, error) {
	subject := strings.TrimSpace(ch.Subject)
	if subject == "" || strings.ContainsAny(subject, "\r\n") {
		return "", canary.Terminalf("commit subject %q must be one non-empty line", ch.Subject)
	}
	var b strings.Builder
	b.WriteString(subject + "\n")
	if body := strings.TrimSpace(ch.Body); body != "" {
		b.WriteString("\n" + body + "\n")
	}
	for i, t := range ch.Trailers {
		if !isTrailerKey(t.Key) || strings.ContainsAny(t.Value, "\r\n") {
			return "", canary.Terminalf("commit trailer %q: %q is malformed", t.Key, t.Value)
		}
		if i == 0 {
			b.WriteString("\n")
		}
		b.WriteString(t.Key + ": " + strings.TrimSpace(t.Value) + "\n")
	}
	return b.String(), nil
}
