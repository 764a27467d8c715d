package fakegithub

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

func (s *Server) objectRoutes() {
	s.api("POST /repos/{owner}/{repo}/git/blobs", authToken, s.createBlob)
	s.api("GET /repos/{owner}/{repo}/git/blobs/{sha}", authToken, s.getBlob)
	s.api("GET /repos/{owner}/{repo}/git/trees/{sha...}", authToken, s.getTree)
	s.api("POST /repos/{owner}/{repo}/git/trees", authToken, s.createTree)
	s.api("POST /repos/{owner}/{repo}/git/commits", authToken, s.createCommit)
	s.api("GET /repos/{owner}/{repo}/git/commits/{sha}", authToken, func(rq *request) (int, any, error) {
		c, err := s.commit(rq.Context(), rq.repo, rq.PathValue("sha"))
		if err != nil || c == nil {
			return 0, nil, firstErr(err, errNotFound)
		}
		return http.StatusOK, c, nil
	})
}

func (s *Server) objURL(r *repo, kind, sha string) *string {
	return github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s/git/%s/%s", r.owner, r.name, kind, sha)))
}

func (s *Server) createBlob(rq *request) (int, any, error) {
	if err := rq.need(PermWrite); err != nil {
		return 0, nil, err
	}
	var in struct {
		Content  *string `json:"content"`
		Encoding string  `json:"encoding"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Content == nil {
		return 0, nil, invalid("Blob", "content", "missing_field", "")
	}
	data := []byte(*in.Content)
	switch in.Encoding {
	case "", "utf-8", "utf8":
	case "base64":
		var err error
		if data, err = base64.StdEncoding.DecodeString(*in.Content); err != nil {
			return 0, nil, invalid("Blob", "content", "invalid", "content is not valid Base64")
		}
	default:
		return 0, nil, invalid("Blob", "encoding", "invalid", "encoding must be utf-8 or base64")
	}
	sha, err := s.git.run(rq.Context(), gitRun{dir: rq.repo.path, stdin: data}, "hash-object", "-w", "--stdin")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, &github.Blob{SHA: github.String(sha), URL: s.objURL(rq.repo, "blobs", sha)}, nil
}

func (s *Server) getBlob(rq *request) (int, any, error) {
	sha := rq.PathValue("sha")
	if typ, err := s.git.shaType(rq.Context(), rq.repo.path, sha); err != nil || typ != "blob" {
		return 0, nil, firstErr(err, errNotFound)
	}
	data, err := s.git.raw(rq.Context(), gitRun{dir: rq.repo.path}, "cat-file", "blob", sha)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &github.Blob{SHA: github.String(sha), Size: github.Int(len(data)),
		Content: github.String(base64.StdEncoding.EncodeToString(data)), Encoding: github.String("base64"),
		URL: s.objURL(rq.repo, "blobs", sha)}, nil
}

// lsTree lists treeish's entries (recursively with trees included when
// recursive), or returns nil when treeish is not a tree.
func (s *Server) lsTree(ctx context.Context, r *repo, treeish string, recursive bool) ([]*github.TreeEntry, error) {
	args := []string{"ls-tree", "-l", "-z"}
	if recursive {
		args = append(args, "-r", "-t")
	}
	out, err := s.git.raw(ctx, gitRun{dir: r.path}, append(args, "--end-of-options", treeish)...)
	if exitCode(err) == 128 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	entries := []*github.TreeEntry{}
	for _, rec := range bytes.Split(out, []byte{0}) {
		meta, path, ok := strings.Cut(string(rec), "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 4 {
			continue
		}
		e := &github.TreeEntry{Mode: github.String(f[0]), Type: github.String(f[1]), SHA: github.String(f[2]),
			Path: github.String(path)}
		if size, err := strconv.Atoi(f[3]); err == nil {
			e.Size = github.Int(size)
		}
		if f[1] != "commit" {
			e.URL = s.objURL(r, f[1]+"s", f[2])
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func (s *Server) tree(ctx context.Context, r *repo, sha string, recursive bool) (*github.Tree, error) {
	entries, err := s.lsTree(ctx, r, sha, recursive)
	if err != nil || entries == nil {
		return nil, err
	}
	return &github.Tree{SHA: github.String(sha), Entries: entries, Truncated: github.Bool(false)}, nil
}

func (s *Server) getTree(rq *request) (int, any, error) {
	sha, err := s.git.resolve(rq.Context(), rq.repo.path, rq.PathValue("sha"), "tree")
	if err != nil || sha == "" {
		return 0, nil, firstErr(err, errNotFound)
	}
	t, err := s.tree(rq.Context(), rq.repo, sha, rq.URL.Query().Get("recursive") != "")
	if err != nil || t == nil {
		return 0, nil, firstErr(err, errNotFound)
	}
	return http.StatusOK, t, nil
}

// treeEntryIn is one entry of POST git/trees. SHA is raw so that an
// explicit null (delete the path) differs from an absent sha.
type treeEntryIn struct {
	Path    string          `json:"path"`
	Mode    string          `json:"mode"`
	Type    string          `json:"type"`
	SHA     json.RawMessage `json:"sha"`
	Content *string         `json:"content"`
}

// indexEntry is a file (blob or gitlink) of a tree being built.
type indexEntry struct{ mode, sha string }

func (s *Server) createTree(rq *request) (int, any, error) {
	if err := rq.need(PermWrite); err != nil {
		return 0, nil, err
	}
	var in struct {
		BaseTree string        `json:"base_tree"`
		Tree     []treeEntryIn `json:"tree"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Tree == nil {
		return 0, nil, invalid("Tree", "tree", "missing_field", "")
	}
	ctx, r := rq.Context(), rq.repo
	files := map[string]indexEntry{}
	if in.BaseTree != "" {
		base, err := s.git.resolve(ctx, r.path, in.BaseTree, "tree")
		if err != nil || base == "" {
			return 0, nil, firstErr(err, unprocessable("base_tree is not a valid tree oid"))
		}
		if err := s.expand(ctx, r, base, "", files); err != nil {
			return 0, nil, err
		}
	}
	for i, e := range in.Tree {
		if err := s.applyEntry(ctx, r, e, files); err != nil {
			return 0, nil, fmt.Errorf("tree entry %d: %w", i, err)
		}
	}
	sha, err := s.writeTree(ctx, r, files)
	if err != nil {
		return 0, nil, err
	}
	t, err := s.tree(ctx, r, sha, false)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, t, nil
}

// expand adds every file of tree to files under prefix.
func (s *Server) expand(ctx context.Context, r *repo, tree, prefix string, files map[string]indexEntry) error {
	entries, err := s.lsTree(ctx, r, tree, true)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.GetType() != "tree" {
			files[prefix+e.GetPath()] = indexEntry{mode: e.GetMode(), sha: e.GetSHA()}
		}
	}
	return nil
}

// applyEntry applies one POST git/trees entry to files: set a blob from
// content or sha, graft a tree or a submodule commit, or delete a path
// (sha: null), directories included.
func (s *Server) applyEntry(ctx context.Context, r *repo, e treeEntryIn, files map[string]indexEntry) error {
	if !validTreePath(e.Path) {
		return unprocessable("tree.path contains a malformed path component")
	}
	wantType := map[string]string{"100644": "blob", "100755": "blob", "120000": "blob", "040000": "tree", "160000": "commit"}[e.Mode]
	if wantType == "" || (e.Type != "" && e.Type != wantType) {
		return unprocessable("Invalid tree info: mode %q and type %q of %s do not match", e.Mode, e.Type, e.Path)
	}
	var sha *string
	if len(e.SHA) > 0 {
		if err := json.Unmarshal(e.SHA, &sha); err != nil {
			return unprocessable("Invalid tree info: sha of %s is not a string", e.Path)
		}
	}
	if e.Content != nil && sha != nil {
		return unprocessable("Invalid tree info: give sha or content for %s, not both", e.Path)
	}
	removePath(files, e.Path)
	switch {
	case e.Content != nil:
		if wantType != "blob" {
			return unprocessable("Invalid tree info: content is only allowed for blobs (%s)", e.Path)
		}
		hashed, err := s.git.run(ctx, gitRun{dir: r.path, stdin: []byte(*e.Content)}, "hash-object", "-w", "--stdin")
		if err != nil {
			return err
		}
		files[e.Path] = indexEntry{mode: e.Mode, sha: hashed}
	case sha == nil && len(e.SHA) > 0: // explicit null: delete
	case sha == nil:
		return invalid("Tree", "tree.sha", "missing_field", "either sha or content is required for "+e.Path)
	case wantType == "commit":
		files[e.Path] = indexEntry{mode: e.Mode, sha: *sha}
	default:
		typ, err := s.git.shaType(ctx, r.path, *sha)
		if err != nil {
			return err
		}
		if typ != wantType {
			return unprocessable("tree.sha %s is not a valid %s", *sha, wantType)
		}
		if typ == "tree" {
			return s.expand(ctx, r, *sha, e.Path+"/", files)
		}
		files[e.Path] = indexEntry{mode: e.Mode, sha: *sha}
	}
	return nil
}

// removePath drops p, everything under p/, and any file that is a parent
// directory of p (a file replaced by a directory).
func removePath(files map[string]indexEntry, p string) {
	for f := range files {
		if f == p || strings.HasPrefix(f, p+"/") || strings.HasPrefix(p, f+"/") {
			delete(files, f)
		}
	}
}

func validTreePath(p string) bool {
	if p == "" {
		return false
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." || strings.EqualFold(c, ".git") || strings.ContainsRune(c, 0) {
			return false
		}
	}
	return true
}

// writeTree writes files as a tree, through a scratch index.
func (s *Server) writeTree(ctx context.Context, r *repo, files map[string]indexEntry) (string, error) {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var info bytes.Buffer
	for _, p := range paths {
		fmt.Fprintf(&info, "%s %s\t%s\x00", files[p].mode, files[p].sha, p)
	}
	index := s.git.scratchIndex()
	defer os.Remove(index)
	env := []string{"GIT_INDEX_FILE=" + index}
	if _, err := s.git.run(ctx, gitRun{dir: r.path, env: env, stdin: info.Bytes()},
		"update-index", "--add", "-z", "--index-info"); err != nil {
		return "", err
	}
	return s.git.run(ctx, gitRun{dir: r.path, env: env}, "write-tree")
}

// commitIn is the body of POST git/commits.
type commitIn struct {
	Message   *string              `json:"message"`
	Tree      string               `json:"tree"`
	Parents   []string             `json:"parents"`
	Author    *github.CommitAuthor `json:"author"`
	Committer *github.CommitAuthor `json:"committer"`
}

func (s *Server) createCommit(rq *request) (int, any, error) {
	if err := rq.need(PermWrite); err != nil {
		return 0, nil, err
	}
	var in commitIn
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Message == nil {
		return 0, nil, invalid("Commit", "message", "missing_field", "")
	}
	ctx, r := rq.Context(), rq.repo
	if typ, err := s.git.shaType(ctx, r.path, in.Tree); err != nil || typ != "tree" {
		return 0, nil, firstErr(err, unprocessable("Tree SHA does not exist"))
	}
	args := []string{"commit-tree", in.Tree}
	for _, p := range in.Parents {
		if typ, err := s.git.shaType(ctx, r.path, p); err != nil || typ != "commit" {
			return 0, nil, firstErr(err, unprocessable("Parent SHA does not exist or is not a commit object"))
		}
		args = append(args, "-p", p)
	}
	author := s.signatureOf(rq.who, in.Author)
	committer := author
	verified := rq.who.kind == TokenInstallation && in.Committer == nil
	if verified {
		committer = signature{name: "GitHub", email: "noreply@github.com", when: s.now()}
	} else if in.Committer != nil {
		committer = s.signatureOf(rq.who, in.Committer)
	}
	sha, err := s.git.run(ctx, gitRun{dir: r.path, stdin: []byte(*in.Message), env: identityEnv(author, committer)},
		append(args, "-F", "-")...)
	if err != nil {
		return 0, nil, err
	}
	if verified {
		r.appCommits[sha] = true
	}
	c, err := s.commit(ctx, r, sha)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, c, nil
}

// signatureOf is given, filled in from the caller where fields are empty.
func (s *Server) signatureOf(who *identity, given *github.CommitAuthor) signature {
	sig := signature{name: who.user.login, email: who.user.login + "@users.noreply.github.com", when: s.now()}
	if who.kind == TokenInstallation {
		sig.email = fmt.Sprintf("%d+%s@users.noreply.github.com", who.user.id, who.user.login)
	}
	if given != nil {
		if given.GetName() != "" {
			sig.name = given.GetName()
		}
		if given.GetEmail() != "" {
			sig.email = given.GetEmail()
		}
		if !given.GetDate().IsZero() {
			sig.when = given.GetDate().Time
		}
	}
	return sig
}

// commit reads commit sha as GitHub's git commit JSON, or nil.
func (s *Server) commit(ctx context.Context, r *repo, sha string) (*github.Commit, error) {
	if typ, err := s.git.shaType(ctx, r.path, sha); err != nil || typ != "commit" {
		return nil, err
	}
	raw, err := s.git.raw(ctx, gitRun{dir: r.path}, "cat-file", "commit", sha)
	if err != nil {
		return nil, err
	}
	head, msg, _ := strings.Cut(string(raw), "\n\n")
	c := &github.Commit{SHA: github.String(sha), NodeID: github.String("C_" + sha[:12]),
		Message: github.String(msg), URL: s.objURL(r, "commits", sha),
		HTMLURL: github.String(s.apiURL(fmt.Sprintf("/%s/%s/commit/%s", r.owner, r.name, sha))),
		Verification: &github.SignatureVerification{Verified: github.Bool(r.appCommits[sha]),
			Reason: github.String("unsigned")}}
	if r.appCommits[sha] {
		c.Verification.Reason = github.String("valid")
	}
	for _, line := range strings.Split(head, "\n") {
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "tree":
			c.Tree = &github.Tree{SHA: github.String(val)}
		case "parent":
			c.Parents = append(c.Parents, &github.Commit{SHA: github.String(val), URL: s.objURL(r, "commits", val)})
		case "author":
			c.Author = parseSignature(val)
		case "committer":
			c.Committer = parseSignature(val)
		}
	}
	return c, nil
}

// parseSignature parses "Name <email> 1700000000 +0000".
func parseSignature(v string) *github.CommitAuthor {
	name, rest, _ := strings.Cut(v, " <")
	email, rest, _ := strings.Cut(rest, "> ")
	secs, _, _ := strings.Cut(rest, " ")
	n, _ := strconv.ParseInt(secs, 10, 64)
	return &github.CommitAuthor{Name: github.String(name), Email: github.String(email),
		Date: &github.Timestamp{Time: time.Unix(n, 0).UTC()}}
}
