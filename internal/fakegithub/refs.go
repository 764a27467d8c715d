package fakegithub

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v60/github"
)

// refInfo is one git ref.
type refInfo struct {
	name, sha, typ string
}

func (s *Server) refRoutes() {
	s.api("GET /repos/{owner}/{repo}/git/ref/{ref...}", authToken, s.getRef)
	s.api("GET /repos/{owner}/{repo}/git/refs", authToken, s.getRefs)
	s.api("GET /repos/{owner}/{repo}/git/refs/{ref...}", authToken, s.getRefs)
	s.api("GET /repos/{owner}/{repo}/git/matching-refs/{ref...}", authToken, s.matchingRefs)
	s.api("POST /repos/{owner}/{repo}/git/refs", authToken, s.createRef)
	s.api("PATCH /repos/{owner}/{repo}/git/refs/{ref...}", authToken, s.updateRef)
	s.api("DELETE /repos/{owner}/{repo}/git/refs/{ref...}", authToken, s.deleteRef)
}

// refs lists the repository's refs under prefix (a plain string prefix of
// the full name, e.g. "refs/heads/fea").
func (s *Server) refs(ctx context.Context, r *repo, prefix string) ([]refInfo, error) {
	out, err := s.git.out(ctx, r.path, "for-each-ref", "--format=%(refname) %(objectname) %(objecttype)", "refs/")
	if err != nil {
		return nil, err
	}
	var list []refInfo
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && strings.HasPrefix(f[0], prefix) {
			list = append(list, refInfo{name: f[0], sha: f[1], typ: f[2]})
		}
	}
	return list, nil
}

// ref returns the ref named full (refs/...), or nil.
func (s *Server) ref(ctx context.Context, r *repo, full string) (*refInfo, error) {
	list, err := s.refs(ctx, r, full)
	if err != nil {
		return nil, err
	}
	for _, ri := range list {
		if ri.name == full {
			return &ri, nil
		}
	}
	return nil, nil
}

func (s *Server) reference(r *repo, ri refInfo) *github.Reference {
	base := fmt.Sprintf("/repos/%s/%s/git/", r.owner, r.name)
	return &github.Reference{
		Ref: github.String(ri.name), URL: github.String(s.apiURL(base + ri.name)),
		NodeID: github.String("REF_" + ri.sha[:12]),
		Object: &github.GitObject{Type: github.String(ri.typ), SHA: github.String(ri.sha),
			URL: github.String(s.apiURL(base + ri.typ + "s/" + ri.sha))},
	}
}

func (s *Server) getRef(rq *request) (int, any, error) {
	ri, err := s.ref(rq.Context(), rq.repo, "refs/"+rq.PathValue("ref"))
	if err != nil || ri == nil {
		return 0, nil, firstErr(err, errNotFound)
	}
	return http.StatusOK, s.reference(rq.repo, *ri), nil
}

// getRefs is the older GET git/refs/{ref}: one ref when the name is
// exact, otherwise every ref under it as a path prefix.
func (s *Server) getRefs(rq *request) (int, any, error) {
	name := strings.TrimSuffix("refs/"+rq.PathValue("ref"), "/")
	list, err := s.refs(rq.Context(), rq.repo, name)
	if err != nil {
		return 0, nil, err
	}
	var out []*github.Reference
	for _, ri := range list {
		if ri.name == name {
			return http.StatusOK, s.reference(rq.repo, ri), nil
		}
		if name == "refs" || strings.HasPrefix(ri.name, name+"/") {
			out = append(out, s.reference(rq.repo, ri))
		}
	}
	if len(out) == 0 {
		return 0, nil, errNotFound
	}
	return http.StatusOK, out, nil
}

func (s *Server) matchingRefs(rq *request) (int, any, error) {
	list, err := s.refs(rq.Context(), rq.repo, "refs/"+rq.PathValue("ref"))
	if err != nil {
		return 0, nil, err
	}
	out := []*github.Reference{}
	for _, ri := range list {
		out = append(out, s.reference(rq.repo, ri))
	}
	return http.StatusOK, out, nil
}

func (s *Server) createRef(rq *request) (int, any, error) {
	if err := rq.need(PermWrite); err != nil {
		return 0, nil, err
	}
	var in struct {
		Ref *string `json:"ref"`
		SHA *string `json:"sha"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	ctx, r := rq.Context(), rq.repo
	switch {
	case in.Ref == nil:
		return 0, nil, invalid("Reference", "ref", "missing_field", "")
	case in.SHA == nil:
		return 0, nil, invalid("Reference", "sha", "missing_field", "")
	case !strings.HasPrefix(*in.Ref, "refs/") || strings.Count(*in.Ref, "/") < 2:
		return 0, nil, unprocessable("Reference name must start with 'refs/' and have at least two slashes.")
	}
	if _, err := s.git.out(ctx, r.path, "check-ref-format", *in.Ref); err != nil {
		return 0, nil, unprocessable("%s is not a valid ref name.", *in.Ref)
	}
	typ, err := s.git.shaType(ctx, r.path, *in.SHA)
	if err != nil || typ == "" {
		return 0, nil, firstErr(err, unprocessable("Object does not exist"))
	}
	if old, err := s.ref(ctx, r, *in.Ref); err != nil || old != nil {
		return 0, nil, firstErr(err, unprocessable("Reference already exists"))
	}
	if err := s.git.updateRef(ctx, r.path, *in.Ref, *in.SHA, ""); err != nil {
		return 0, nil, unprocessable("Reference already exists")
	}
	if b, ok := strings.CutPrefix(*in.Ref, "refs/heads/"); ok {
		s.branchMoved(ctx, r, b, "", *in.SHA, rq.who, nil)
	}
	return http.StatusCreated, s.reference(r, refInfo{name: *in.Ref, sha: *in.SHA, typ: typ}), nil
}

func (s *Server) updateRef(rq *request) (int, any, error) {
	if err := rq.need(PermWrite); err != nil {
		return 0, nil, err
	}
	var in struct {
		SHA   *string `json:"sha"`
		Force bool    `json:"force"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.SHA == nil {
		return 0, nil, invalid("Reference", "sha", "missing_field", "")
	}
	ctx, r, name := rq.Context(), rq.repo, "refs/"+rq.PathValue("ref")
	old, err := s.ref(ctx, r, name)
	if err != nil || old == nil {
		return 0, nil, firstErr(err, unprocessable("Reference does not exist"))
	}
	typ, err := s.git.shaType(ctx, r.path, *in.SHA)
	if err != nil || typ == "" {
		return 0, nil, firstErr(err, unprocessable("Object does not exist"))
	}
	branch, isBranch := strings.CutPrefix(name, "refs/heads/")
	if isBranch && r.guarded(branch) {
		return 0, nil, unprocessable("Protected branch update failed for %s.", name)
	}
	if !in.Force {
		ff, err := s.git.isAncestor(ctx, r.path, old.sha, *in.SHA)
		if err != nil || !ff {
			return 0, nil, firstErr(err, unprocessable("Update is not a fast forward"))
		}
	}
	if err := s.git.updateRef(ctx, r.path, name, *in.SHA, old.sha); err != nil {
		return 0, nil, unprocessable("Reference cannot be updated")
	}
	if isBranch {
		s.branchMoved(ctx, r, branch, old.sha, *in.SHA, rq.who, nil)
	}
	return http.StatusOK, s.reference(r, refInfo{name: name, sha: *in.SHA, typ: typ}), nil
}

func (s *Server) deleteRef(rq *request) (int, any, error) {
	if err := rq.need(PermWrite); err != nil {
		return 0, nil, err
	}
	ctx, r, name := rq.Context(), rq.repo, "refs/"+rq.PathValue("ref")
	old, err := s.ref(ctx, r, name)
	if err != nil || old == nil {
		return 0, nil, firstErr(err, unprocessable("Reference does not exist"))
	}
	branch, isBranch := strings.CutPrefix(name, "refs/heads/")
	if isBranch && (r.protection[branch] != nil || branch == r.defaultBranch) {
		return 0, nil, unprocessable("Cannot delete this protected branch")
	}
	if _, err := s.git.out(ctx, r.path, "update-ref", "-d", name, old.sha); err != nil {
		return 0, nil, unprocessable("Reference cannot be deleted")
	}
	if isBranch {
		s.branchMoved(ctx, r, branch, old.sha, "", rq.who, nil)
	}
	return http.StatusNoContent, nil, nil
}
