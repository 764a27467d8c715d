package fakegithub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

func (s *Server) issueRoutes() {
	s.api("GET /repos/{owner}/{repo}/issues/{number}", authToken, s.getIssue)
	s.api("GET /repos/{owner}/{repo}/issues/{number}/comments", authToken, s.listComments)
	s.api("POST /repos/{owner}/{repo}/issues/{number}/comments", authToken, s.createComment)
	// ServeMux cannot tell issues/comments/{id} from issues/{number}/comments.
	s.apiAs("GET /repos/{owner}/{repo}/issues/{number}/{id}",
		func(*http.Request) string { return "GET /repos/{owner}/{repo}/issues/comments/{id}" }, authToken,
		func(rq *request) (int, any, error) {
			if rq.PathValue("number") != "comments" {
				return 0, nil, errNotFound
			}
			return s.getComment(rq)
		})
	s.api("PATCH /repos/{owner}/{repo}/issues/comments/{id}", authToken, s.editComment)
	s.api("GET /repos/{owner}/{repo}/issues/{number}/labels", authToken, s.listLabels)
	s.api("POST /repos/{owner}/{repo}/issues/{number}/labels", authToken, s.addLabels)
	s.api("DELETE /repos/{owner}/{repo}/issues/{number}/labels/{name}", authToken, s.removeLabel)
}

// issueNumber is the request's {number} issue (every issue here is a
// pull request).
func (rq *request) issueNumber() (int, error) {
	n, err := strconv.Atoi(rq.PathValue("number"))
	if err != nil || rq.repo.issues[n] == nil {
		return 0, errNotFound
	}
	return n, nil
}

// issueJSON is pull request n seen as an issue.
func (s *Server) issueJSON(r *repo, n int) *github.Issue {
	p, is := r.pulls[n], r.issues[n]
	state := "closed"
	if p.open {
		state = "open"
	}
	path := fmt.Sprintf("/repos/%s/%s/issues/%d", r.owner, r.name, n)
	iss := &github.Issue{ID: github.Int64(p.id), NodeID: github.String(fmt.Sprintf("I_%d", p.id)), Number: github.Int(n),
		State: github.String(state), Title: github.String(p.title), Body: github.String(p.body), User: s.user(p.author),
		Comments: github.Int(len(is.comments)), CreatedAt: ghTime(p.created), UpdatedAt: ghTime(p.updated),
		ClosedAt: ghTime(p.closed), URL: github.String(s.apiURL(path)),
		HTMLURL:           github.String(s.apiURL(fmt.Sprintf("/%s/%s/pull/%d", r.owner, r.name, n))),
		AuthorAssociation: github.String(association(p.author)),
		PullRequestLinks: &github.PullRequestLinks{
			URL:      github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s/pulls/%d", r.owner, r.name, n))),
			HTMLURL:  github.String(s.apiURL(fmt.Sprintf("/%s/%s/pull/%d", r.owner, r.name, n))),
			MergedAt: ghTime(p.merged),
		},
	}
	for _, l := range is.labels {
		iss.Labels = append(iss.Labels, r.labels[l])
	}
	return iss
}

func (s *Server) getIssue(rq *request) (int, any, error) {
	n, err := rq.issueNumber()
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, s.issueJSON(rq.repo, n), nil
}

func (s *Server) listComments(rq *request) (int, any, error) {
	n, err := rq.issueNumber()
	if err != nil {
		return 0, nil, err
	}
	list := rq.repo.issues[n].comments
	if v := rq.URL.Query().Get("since"); v != "" {
		since, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return 0, nil, invalid("IssueComment", "since", "invalid", "since must be an ISO 8601 timestamp")
		}
		list = slices.DeleteFunc(slices.Clone(list), func(c *github.IssueComment) bool { return c.GetUpdatedAt().Before(since) })
	}
	page, err := paginate(rq, list)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, page, nil
}

func (s *Server) createComment(rq *request) (int, any, error) {
	n, err := rq.issueNumber()
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Body *string `json:"body"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	c, err := s.addComment(rq.Context(), rq.repo, n, rq.who, in.Body)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, c, nil
}

// addComment comments on issue n as who and emits issue_comment created.
func (s *Server) addComment(ctx context.Context, r *repo, n int, who *identity, body *string) (*github.IssueComment, error) {
	if body == nil || strings.TrimSpace(*body) == "" {
		return nil, invalid("IssueComment", "body", "missing_field", "")
	}
	id, now := s.id(), s.now()
	c := &github.IssueComment{ID: github.Int64(id), NodeID: github.String(fmt.Sprintf("IC_%d", id)),
		Body: github.String(*body), User: s.user(who.user), CreatedAt: ghTime(now), UpdatedAt: ghTime(now),
		URL:               github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s/issues/comments/%d", r.owner, r.name, id))),
		HTMLURL:           github.String(s.apiURL(fmt.Sprintf("/%s/%s/pull/%d#issuecomment-%d", r.owner, r.name, n, id))),
		IssueURL:          github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s/issues/%d", r.owner, r.name, n))),
		AuthorAssociation: github.String(association(who.user)),
	}
	r.issues[n].comments = append(r.issues[n].comments, c)
	s.emitComment(ctx, r, n, c, "created", who.user)
	return c, nil
}

// findComment returns the comment with the request's {id} and its issue.
func (rq *request) findComment() (*github.IssueComment, int, error) {
	id, err := strconv.ParseInt(rq.PathValue("id"), 10, 64)
	if err != nil {
		return nil, 0, errNotFound
	}
	for n, is := range rq.repo.issues {
		for _, c := range is.comments {
			if c.GetID() == id {
				return c, n, nil
			}
		}
	}
	return nil, 0, errNotFound
}

func (s *Server) getComment(rq *request) (int, any, error) {
	c, _, err := rq.findComment()
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, c, nil
}

func (s *Server) editComment(rq *request) (int, any, error) {
	c, n, err := rq.findComment()
	if err != nil {
		return 0, nil, err
	}
	if rq.who.user == nil || c.GetUser().GetLogin() != rq.who.user.login {
		if err := rq.need(PermWrite); err != nil {
			return 0, nil, err
		}
	}
	var in struct {
		Body *string `json:"body"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Body == nil || strings.TrimSpace(*in.Body) == "" {
		return 0, nil, invalid("IssueComment", "body", "missing_field", "")
	}
	c.Body, c.UpdatedAt = github.String(*in.Body), ghTime(s.now())
	s.emitComment(rq.Context(), rq.repo, n, c, "edited", rq.who.user)
	return http.StatusOK, c, nil
}

func (s *Server) labelsOf(r *repo, n int) []*github.Label {
	out := []*github.Label{}
	for _, l := range r.issues[n].labels {
		out = append(out, r.labels[l])
	}
	return out
}

func (s *Server) listLabels(rq *request) (int, any, error) {
	n, err := rq.issueNumber()
	if err != nil {
		return 0, nil, err
	}
	page, err := paginate(rq, s.labelsOf(rq.repo, n))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, page, nil
}

// addLabels takes GitHub's three body forms: ["a"], {"labels": ["a"]}
// and {"labels": [{"name": "a"}]}. Unknown labels are created.
func (s *Server) addLabels(rq *request) (int, any, error) {
	if err := rq.need(PermWrite); err != nil {
		return 0, nil, err
	}
	n, err := rq.issueNumber()
	if err != nil {
		return 0, nil, err
	}
	var raw json.RawMessage
	if err := rq.decode(&raw); err != nil {
		return 0, nil, err
	}
	names, err := labelNames(raw)
	if err != nil {
		return 0, nil, err
	}
	r, is := rq.repo, rq.repo.issues[n]
	for _, name := range names {
		if r.labels[name] == nil {
			id := s.id()
			r.labels[name] = &github.Label{ID: github.Int64(id), NodeID: github.String(fmt.Sprintf("LA_%d", id)),
				Name: github.String(name), Color: github.String("ededed"), Default: github.Bool(false),
				URL: github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s/labels/%s", r.owner, r.name, name)))}
		}
		if !slices.Contains(is.labels, name) {
			is.labels = append(is.labels, name)
			s.emitLabel(rq.Context(), r, n, name, "labeled", rq.who.user)
		}
	}
	return http.StatusOK, s.labelsOf(r, n), nil
}

func labelNames(raw json.RawMessage) ([]string, error) {
	var names []string
	if json.Unmarshal(raw, &names) == nil {
		return names, nil
	}
	var obj struct {
		Labels json.RawMessage `json:"labels"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Labels != nil {
		if json.Unmarshal(obj.Labels, &names) == nil {
			return names, nil
		}
		var named []struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(obj.Labels, &named) == nil {
			for _, l := range named {
				names = append(names, l.Name)
			}
			return names, nil
		}
	}
	return nil, invalid("Label", "labels", "invalid", "labels must be a list of names")
}

func (s *Server) removeLabel(rq *request) (int, any, error) {
	if err := rq.need(PermWrite); err != nil {
		return 0, nil, err
	}
	n, err := rq.issueNumber()
	if err != nil {
		return 0, nil, err
	}
	is, name := rq.repo.issues[n], rq.PathValue("name")
	i := slices.Index(is.labels, name)
	if i < 0 {
		return 0, nil, &apiError{Status: http.StatusNotFound, Message: "Label does not exist"}
	}
	is.labels = slices.Delete(is.labels, i, i+1)
	s.emitLabel(rq.Context(), rq.repo, n, name, "unlabeled", rq.who.user)
	return http.StatusOK, s.labelsOf(rq.repo, n), nil
}

// Comment comments on pull request pr as login, through the same code as
// POST .../issues/{n}/comments, and emits the issue_comment webhook.
func (s *Server) Comment(owner, name string, pr int, login, body string) (*github.IssueComment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, who, err := s.actAs(owner, name, pr, login)
	if err != nil {
		return nil, err
	}
	return s.addComment(s.t.Context(), r, pr, who, &body)
}

// actAs resolves a Go-API call made on behalf of login on owner/name#n.
func (s *Server) actAs(owner, name string, n int, login string) (*repo, *identity, error) {
	r := s.repos[repoKey(owner, name)]
	if r == nil {
		return nil, nil, fmt.Errorf("no repository %s/%s", owner, name)
	}
	u := s.users[login]
	if u == nil || u.typ == "Organization" {
		return nil, nil, fmt.Errorf("no user %q: add it with AddUser", login)
	}
	if u.perm == PermNone {
		return nil, nil, fmt.Errorf("user %q has no access to %s/%s", login, owner, name)
	}
	if r.pulls[n] == nil {
		return nil, nil, fmt.Errorf("no pull request %s/%s#%d", owner, name, n)
	}
	return r, &identity{kind: TokenUser, user: u}, nil
}
