package fakegithub

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// repo is one repository: a bare git repository plus the state GitHub
// keeps beside it.
type repo struct {
	id            int64
	owner, name   string
	defaultBranch string
	path          string
	created       time.Time
	lastNumber    int // issues and pull requests share one number space
	pulls         map[int]*pull
	issues        map[int]*issue
	labels        map[string]*github.Label
	checkRuns     map[int64]*checkRun
	statuses      map[string][]*github.RepoStatus // by commit
	protection    map[string]*protection          // by branch
	// appCommits are the commits the App created through the API, which
	// GitHub signs and reports as verified.
	appCommits map[string]bool
}

// protection is a branch's protection rule.
type protection struct {
	approvals int
	checks    []string
	// dismissStale dismisses approving reviews when the head moves.
	dismissStale bool
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func repoKey(owner, name string) string { return strings.ToLower(owner + "/" + name) }

// CreateRepo creates owner/name with defaultBranch. When seedDir is not
// empty its files (all of them, .git excepted) are committed as the
// initial commit of defaultBranch; otherwise the repository is empty.
func (s *Server) CreateRepo(owner, name, defaultBranch, seedDir string) {
	s.t.Helper()
	if err := s.createRepo(s.t.Context(), owner, name, defaultBranch, seedDir); err != nil {
		s.t.Fatalf("fakegithub: create repo %s/%s: %v", owner, name, err)
	}
}

func (s *Server) createRepo(ctx context.Context, owner, name, branch, seedDir string) error {
	if !validName.MatchString(owner) || !validName.MatchString(name) || strings.HasSuffix(name, ".git") {
		return fmt.Errorf("bad owner or name %q/%q", owner, name)
	}
	if branch == "" || strings.ContainsAny(branch, " ~^:?*[\\") {
		return fmt.Errorf("bad default branch %q", branch)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.repos[repoKey(owner, name)] != nil {
		return fmt.Errorf("%s/%s already exists", owner, name)
	}
	r := &repo{id: s.id(), owner: owner, name: name, defaultBranch: branch,
		path: filepath.Join(s.root, owner, name+".git"), created: s.now(),
		pulls: map[int]*pull{}, issues: map[int]*issue{}, labels: map[string]*github.Label{},
		checkRuns: map[int64]*checkRun{}, statuses: map[string][]*github.RepoStatus{},
		protection: map[string]*protection{}, appCommits: map[string]bool{}}
	if _, err := s.git.out(ctx, s.root, "init", "--bare", "--quiet", "-b", branch, r.path); err != nil {
		return err
	}
	if _, err := s.git.out(ctx, r.path, "config", "http.receivepack", "true"); err != nil {
		return err
	}
	hook := filepath.Join(r.path, "hooks", "pre-receive")
	if err := os.WriteFile(hook, []byte(preReceiveHook), 0o755); err != nil {
		return fmt.Errorf("write pre-receive hook: %w", err)
	}
	if seedDir != "" {
		if err := s.seed(ctx, r, seedDir); err != nil {
			return err
		}
	}
	s.owner(owner)
	s.repos[repoKey(owner, name)] = r
	s.repoOrder = append(s.repoOrder, r)
	return nil
}

// preReceiveHook refuses pushes to branches whose protection requires
// reviews or checks, as GitHub does (GH006). Merges through the API move
// the branch with update-ref and are not affected.
const preReceiveHook = `#!/bin/sh
while read old new ref; do
	if grep -qxF "$ref" "$GIT_DIR/fakegithub-protected" 2>/dev/null; then
		echo "error: GH006: Protected branch update failed for $ref." >&2
		exit 1
	fi
done
`

// seed commits seedDir's files as the initial commit of the default branch.
func (s *Server) seed(ctx context.Context, r *repo, seedDir string) error {
	abs, err := filepath.Abs(seedDir)
	if err != nil {
		return fmt.Errorf("seed dir %s: %w", seedDir, err)
	}
	env := []string{"GIT_INDEX_FILE=" + s.git.scratchIndex(), "GIT_WORK_TREE=" + abs}
	defer os.Remove(env[0][len("GIT_INDEX_FILE="):])
	if _, err := s.git.run(ctx, gitRun{dir: r.path, env: env}, "add", "-A", "--force", "."); err != nil {
		return err
	}
	tree, err := s.git.run(ctx, gitRun{dir: r.path, env: env}, "write-tree")
	if err != nil {
		return err
	}
	who := signature{name: r.owner, email: r.owner + "@users.noreply.github.com", when: s.now()}
	sha, err := s.git.run(ctx, gitRun{dir: r.path, env: identityEnv(who, who)}, "commit-tree", tree, "-m", "Initial commit")
	if err != nil {
		return err
	}
	return s.git.updateRef(ctx, r.path, "refs/heads/"+r.defaultBranch, sha, "")
}

// RepoPath is the bare repository's directory, for inspection with git.
func (s *Server) RepoPath(owner, name string) string {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoKey(owner, name)]
	if r == nil {
		s.t.Fatalf("fakegithub: no repository %s/%s", owner, name)
	}
	return r.path
}

// Protect sets branch's protection: merges of pull requests into it need
// requiredApprovals approving reviews by people with write access and a
// successful check run (or commit status) for each of requiredChecks on
// the head commit. A rule with requirements also refuses direct pushes
// and ref updates, as GitHub does. Protect with 0 and no checks lifts it.
func (s *Server) Protect(owner, name, branch string, requiredApprovals int, requiredChecks ...string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoKey(owner, name)]
	if r == nil || requiredApprovals < 0 {
		s.t.Fatalf("fakegithub: Protect(%s/%s, %d): no such repository or a negative count", owner, name, requiredApprovals)
	}
	r.protection[branch] = &protection{approvals: requiredApprovals, checks: slices.Clone(requiredChecks)}
	var refs []string
	for b, p := range r.protection {
		if p.approvals > 0 || len(p.checks) > 0 {
			refs = append(refs, "refs/heads/"+b+"\n")
		}
	}
	slices.Sort(refs)
	if err := os.WriteFile(filepath.Join(r.path, "fakegithub-protected"), []byte(strings.Join(refs, "")), 0o644); err != nil {
		s.t.Fatalf("fakegithub: Protect: %v", err)
	}
}

// DismissStaleApprovals turns on the protection rule GitHub calls
// "Dismiss stale pull request approvals when new commits are pushed" for
// branch: when a pull request into it gets a new head, its approving
// reviews are dismissed.
func (s *Server) DismissStaleApprovals(owner, name, branch string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoKey(owner, name)]
	if r == nil {
		s.t.Fatalf("fakegithub: DismissStaleApprovals(%s/%s): no such repository", owner, name)
	}
	if r.protection[branch] == nil {
		r.protection[branch] = &protection{}
	}
	r.protection[branch].dismissStale = true
}

// guarded reports whether direct updates of branch are refused.
func (r *repo) guarded(branch string) bool {
	p := r.protection[branch]
	return p != nil && (p.approvals > 0 || len(p.checks) > 0)
}

// repository is r as GitHub's JSON.
func (s *Server) repository(r *repo) *github.Repository {
	full := r.owner + "/" + r.name
	return &github.Repository{
		ID: github.Int64(r.id), NodeID: github.String(fmt.Sprintf("R_%d", r.id)),
		Name: github.String(r.name), FullName: github.String(full), Owner: s.owner(r.owner),
		Private: github.Bool(true), Visibility: github.String("private"),
		DefaultBranch: github.String(r.defaultBranch),
		URL:           github.String(s.apiURL("/repos/" + full)), HTMLURL: github.String(s.apiURL("/" + full)),
		CloneURL:  github.String(s.apiURL("/" + full + ".git")),
		CreatedAt: ghTime(r.created), AllowMergeCommit: github.Bool(true), AllowSquashMerge: github.Bool(true),
		AllowRebaseMerge: github.Bool(true), DeleteBranchOnMerge: github.Bool(false),
	}
}

func (s *Server) repoRoutes() {
	s.api("GET /repos/{owner}/{repo}", authToken, func(rq *request) (int, any, error) {
		gr := s.repository(rq.repo)
		perm := s.permission(rq.who, rq.repo)
		gr.Permissions = map[string]bool{"admin": perm == PermAdmin, "maintain": perm == PermAdmin,
			"push": perm == PermAdmin || perm == PermWrite, "triage": true, "pull": true}
		return http.StatusOK, gr, nil
	})
	s.api("GET /repos/{owner}/{repo}/contents/{path...}", authToken, s.getContents)
	s.api("GET /repos/{owner}/{repo}/collaborators/{user}/permission", authToken, s.collaboratorPermission)
}

// getContents serves a file (base64) or a directory listing at ?ref=
// (the default branch when absent).
func (s *Server) getContents(rq *request) (int, any, error) {
	r, p := rq.repo, strings.Trim(rq.PathValue("path"), "/")
	ref := rq.URL.Query().Get("ref")
	if ref == "" {
		ref = r.defaultBranch
	}
	commit, err := s.git.resolve(rq.Context(), r.path, ref, "commit")
	if err != nil || commit == "" {
		return 0, nil, firstErr(err, &apiError{Status: http.StatusNotFound, Message: "No commit found for the ref " + ref})
	}
	content := func(e *github.TreeEntry, full string) *github.RepositoryContent {
		typ := map[string]string{"blob": "file", "tree": "dir", "commit": "submodule"}[e.GetType()]
		if e.GetMode() == "120000" {
			typ = "symlink"
		}
		return &github.RepositoryContent{Type: github.String(typ), Name: github.String(path.Base(full)),
			Path: github.String(full), SHA: e.SHA, Size: e.Size,
			URL: github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s/contents/%s?ref=%s", r.owner, r.name, full, ref)))}
	}
	typ, err := s.git.objectType(rq.Context(), r.path, commit+":"+p)
	if err != nil || (typ != "tree" && typ != "blob") {
		return 0, nil, firstErr(err, errNotFound)
	}
	if typ == "tree" {
		entries, err := s.lsTree(rq.Context(), r, commit+":"+p, false)
		if err != nil {
			return 0, nil, err
		}
		list := make([]*github.RepositoryContent, 0, len(entries))
		for _, e := range entries {
			list = append(list, content(e, path.Join(p, e.GetPath())))
		}
		return http.StatusOK, list, nil
	}
	blob, err := s.git.raw(rq.Context(), gitRun{dir: r.path}, "cat-file", "blob", commit+":"+p)
	if err != nil {
		return 0, nil, err
	}
	sha, err := s.git.out(rq.Context(), r.path, "rev-parse", commit+":"+p)
	if err != nil {
		return 0, nil, err
	}
	c := content(&github.TreeEntry{SHA: github.String(sha), Type: github.String("blob"), Mode: github.String("100644"),
		Size: github.Int(len(blob))}, p)
	c.Encoding = github.String("base64")
	c.Content = github.String(base64.StdEncoding.EncodeToString(blob))
	return http.StatusOK, c, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
