package fakegithub

import (
	"context"
	"maps"
	"net/http"
	"slices"
)

// serveGit serves /{owner}/{name}.git/{rest} with the real git
// http-backend. Like GitHub it wants basic auth whose password is a valid
// token (any user name; installation tokens use x-access-token), and a
// push needs write permission.
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request, owner, name, rest string) {
	push := rest == "git-receive-pack" || (rest == "info/refs" && r.URL.Query().Get("service") == "git-receive-pack")
	route := "GIT /{owner}/{repo}.git/" + rest
	if rest == "info/refs" {
		route += "?service=" + r.URL.Query().Get("service")
	}
	s.mu.Lock()
	rp, who, status := s.gitAccess(r, owner, name, push)
	kind := TokenNone
	if who != nil {
		kind = who.kind
	}
	if status != 0 {
		s.calls = append(s.calls, Call{Method: r.Method, Route: route, Status: status, Token: kind})
		s.mu.Unlock()
		switch status {
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
			http.Error(w, "Invalid username or token. Password authentication is not supported for Git operations.", status)
		case http.StatusForbidden:
			http.Error(w, "Permission to "+owner+"/"+name+".git denied to "+who.user.login+".", status)
		default:
			http.Error(w, "Repository not found.", status)
		}
		return
	}
	// A push holds the lock throughout, so that pull requests see the refs
	// it moved; fetches run unlocked.
	receive := rest == "git-receive-pack"
	if !receive {
		s.mu.Unlock()
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	r.URL.Path = "/" + rp.owner + "/" + rp.name + ".git/" + rest
	r.URL.RawPath = ""
	if receive {
		before, err := s.git.branches(r.Context(), rp.path)
		s.cgi.ServeHTTP(rec, r)
		if err == nil {
			s.afterPush(r.Context(), rp, before, who)
		}
	} else {
		s.cgi.ServeHTTP(rec, r)
		s.mu.Lock()
	}
	s.calls = append(s.calls, Call{Method: r.Method, Route: route, Status: rec.status, Token: kind})
	s.mu.Unlock()
}

// gitAccess authenticates a git request; a non-zero status refuses it.
func (s *Server) gitAccess(r *http.Request, owner, name string, push bool) (*repo, *identity, int) {
	_, pass, ok := r.BasicAuth()
	if !ok {
		return nil, nil, http.StatusUnauthorized
	}
	tok := s.tokens[pass]
	if tok == nil || (!tok.expires.IsZero() && !s.now().Before(tok.expires)) {
		return nil, nil, http.StatusUnauthorized
	}
	who := &identity{kind: tok.kind, token: pass, user: tok.user, inst: tok.inst}
	rp := s.repos[repoKey(owner, name)]
	if rp == nil || s.permission(who, rp) == PermNone {
		return nil, who, http.StatusNotFound
	}
	if perm := s.permission(who, rp); push && perm != PermWrite && perm != PermAdmin {
		return nil, who, http.StatusForbidden
	}
	return rp, who, 0
}

// afterPush sends push for every branch the push moved, created or
// deleted, and tells open pull requests whose head branch moved, as
// GitHub's "synchronize" event does.
func (s *Server) afterPush(ctx context.Context, rp *repo, before map[string]string, who *identity) {
	after, err := s.git.branches(ctx, rp.path)
	if err != nil {
		s.log.Warn("read branches after a push", "repo", rp.name, "err", err)
		return
	}
	moved := map[string]bool{}
	for branch, sha := range after {
		moved[branch] = before[branch] != sha
	}
	for branch := range before {
		if _, kept := after[branch]; !kept {
			moved[branch] = true
		}
	}
	for _, branch := range slices.Sorted(maps.Keys(moved)) {
		if moved[branch] {
			s.branchMoved(ctx, rp, branch, before[branch], after[branch], who, before)
		}
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush lets git's streamed answers through.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
