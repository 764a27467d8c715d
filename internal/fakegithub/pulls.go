package fakegithub

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// pull is a pull request. Head and base are branches of the same
// repository; headSHA follows the head branch while the PR is open.
type pull struct {
	number     int
	id         int64
	title      string
	body       string
	open       bool
	author     *account
	head, base string
	headSHA    string
	created    time.Time
	updated    time.Time
	closed     time.Time
	merged     time.Time
	mergedBy   *account
	mergeSHA   string
	reviews    []*github.PullRequestReview
}

// issue is what pull requests share with issues: comments and labels.
type issue struct {
	comments []*github.IssueComment
	labels   []string
}

func (s *Server) pullRoutes() {
	s.api("GET /repos/{owner}/{repo}/pulls", authToken, s.listPulls)
	s.api("POST /repos/{owner}/{repo}/pulls", authToken, s.createPull)
	s.api("GET /repos/{owner}/{repo}/pulls/{number}", authToken, s.getPull)
	s.api("PATCH /repos/{owner}/{repo}/pulls/{number}", authToken, s.editPull)
	s.api("GET /repos/{owner}/{repo}/pulls/{number}/commits", authToken, s.pullCommits)
	s.api("PUT /repos/{owner}/{repo}/pulls/{number}/merge", authToken, s.mergePull)
	s.api("GET /repos/{owner}/{repo}/pulls/{number}/merge", authToken, func(rq *request) (int, any, error) {
		p, err := rq.pull()
		if err != nil || p.merged.IsZero() {
			return 0, nil, firstErr(err, errNotFound)
		}
		return http.StatusNoContent, nil, nil
	})
	s.api("GET /repos/{owner}/{repo}/pulls/{number}/reviews", authToken, s.listReviews)
	s.api("POST /repos/{owner}/{repo}/pulls/{number}/reviews", authToken, s.createReview)
}

// pull is the request's {number} pull request.
func (rq *request) pull() (*pull, error) {
	n, err := strconv.Atoi(rq.PathValue("number"))
	if err != nil {
		return nil, errNotFound
	}
	p := rq.repo.pulls[n]
	if p == nil {
		return nil, errNotFound
	}
	return p, nil
}

// PR returns pull request n of owner/name as the API would, or nil.
func (s *Server) PR(owner, name string, n int) *github.PullRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoKey(owner, name)]
	if r == nil || r.pulls[n] == nil {
		return nil
	}
	pr, err := s.pullJSON(s.t.Context(), r, r.pulls[n], true)
	if err != nil {
		s.t.Errorf("fakegithub: PR %s/%s#%d: %v", owner, name, n, err)
	}
	return pr
}

// refresh makes p.headSHA follow its branch while p is open.
func (s *Server) refresh(ctx context.Context, r *repo, p *pull) error {
	if !p.open {
		return nil
	}
	sha, err := s.git.refSHA(ctx, r.path, "refs/heads/"+p.head)
	if err != nil {
		return err
	}
	if sha != "" && sha != p.headSHA {
		p.headSHA = sha
		if rule := r.protection[p.base]; rule != nil && rule.dismissStale {
			dismissApprovals(p)
		}
	}
	return nil
}

// dismissApprovals marks p's approving reviews dismissed, as GitHub does
// when a protection rule dismisses stale approvals on a new head.
func dismissApprovals(p *pull) {
	for _, rv := range p.reviews {
		if rv.GetState() == "APPROVED" {
			rv.State = github.String("DISMISSED")
		}
	}
}

// pullJSON renders p; full adds the fields GitHub computes only for a
// single pull request (mergeable, counts).
func (s *Server) pullJSON(ctx context.Context, r *repo, p *pull, full bool) (*github.PullRequest, error) {
	if err := s.refresh(ctx, r, p); err != nil {
		return nil, err
	}
	baseSHA, err := s.git.refSHA(ctx, r.path, "refs/heads/"+p.base)
	if err != nil {
		return nil, err
	}
	path := fmt.Sprintf("/repos/%s/%s/pulls/%d", r.owner, r.name, p.number)
	ghRepo := s.repository(r)
	owner := s.owner(r.owner)
	state := "closed"
	if p.open {
		state = "open"
	}
	pr := &github.PullRequest{
		ID: github.Int64(p.id), NodeID: github.String(fmt.Sprintf("PR_%d", p.id)), Number: github.Int(p.number),
		State: github.String(state), Title: github.String(p.title), Body: github.String(p.body),
		User: s.user(p.author), Draft: github.Bool(false), Locked: github.Bool(false),
		CreatedAt: ghTime(p.created), UpdatedAt: ghTime(p.updated), ClosedAt: ghTime(p.closed), MergedAt: ghTime(p.merged),
		Merged: github.Bool(!p.merged.IsZero()), MergedBy: s.user(p.mergedBy),
		URL:      github.String(s.apiURL(path)),
		HTMLURL:  github.String(s.apiURL(fmt.Sprintf("/%s/%s/pull/%d", r.owner, r.name, p.number))),
		IssueURL: github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s/issues/%d", r.owner, r.name, p.number))),
		Head: &github.PullRequestBranch{Label: github.String(r.owner + ":" + p.head), Ref: github.String(p.head),
			SHA: github.String(p.headSHA), Repo: ghRepo, User: owner},
		Base: &github.PullRequestBranch{Label: github.String(r.owner + ":" + p.base), Ref: github.String(p.base),
			SHA: github.String(baseSHA), Repo: ghRepo, User: owner},
		AuthorAssociation: github.String(association(p.author)),
	}
	if p.mergeSHA != "" {
		pr.MergeCommitSHA = github.String(p.mergeSHA)
	}
	for _, l := range r.issues[p.number].labels {
		pr.Labels = append(pr.Labels, r.labels[l])
	}
	if full {
		pr.Comments = github.Int(len(r.issues[p.number].comments))
		pr.ReviewComments = github.Int(0)
		pr.MaintainerCanModify = github.Bool(false)
		if err := s.mergeability(ctx, r, p, pr); err != nil {
			return nil, err
		}
	}
	return pr, nil
}

func association(a *account) string {
	switch {
	case a == nil:
		return "NONE"
	case a.perm == PermAdmin:
		return "OWNER"
	case a.perm == PermWrite:
		return "COLLABORATOR"
	}
	return "CONTRIBUTOR"
}

func (s *Server) listPulls(rq *request) (int, any, error) {
	q, r := rq.URL.Query(), rq.repo
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	if state != "open" && state != "closed" && state != "all" {
		return 0, nil, invalid("PullRequest", "state", "invalid", "state must be open, closed or all")
	}
	headOwner, headBranch, byHead := strings.Cut(q.Get("head"), ":")
	var list []*pull
	for _, p := range r.pulls {
		if err := s.refresh(rq.Context(), r, p); err != nil {
			return 0, nil, err
		}
		switch {
		case state == "open" && !p.open, state == "closed" && p.open:
		case byHead && (!strings.EqualFold(headOwner, r.owner) || p.head != headBranch):
		case q.Get("base") != "" && p.base != q.Get("base"):
		default:
			list = append(list, p)
		}
	}
	slices.SortFunc(list, func(a, b *pull) int { return b.number - a.number })
	if q.Get("direction") == "asc" {
		slices.Reverse(list)
	}
	page, err := paginate(rq, list)
	if err != nil {
		return 0, nil, err
	}
	out := []*github.PullRequest{}
	for _, p := range page {
		pr, err := s.pullJSON(rq.Context(), r, p, false)
		if err != nil {
			return 0, nil, err
		}
		out = append(out, pr)
	}
	return http.StatusOK, out, nil
}

func (s *Server) getPull(rq *request) (int, any, error) {
	p, err := rq.pull()
	if err != nil {
		return 0, nil, err
	}
	pr, err := s.pullJSON(rq.Context(), rq.repo, p, true)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, pr, nil
}

func (s *Server) createPull(rq *request) (int, any, error) {
	if err := rq.need(PermWrite); err != nil {
		return 0, nil, err
	}
	var in struct {
		Title *string `json:"title"`
		Head  string  `json:"head"`
		Base  string  `json:"base"`
		Body  string  `json:"body"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	ctx, r := rq.Context(), rq.repo
	head := in.Head
	if o, b, ok := strings.Cut(in.Head, ":"); ok {
		if !strings.EqualFold(o, r.owner) {
			return 0, nil, invalid("PullRequest", "head", "invalid", "")
		}
		head = b
	}
	switch {
	case in.Title == nil || *in.Title == "":
		return 0, nil, invalid("PullRequest", "title", "missing_field", "")
	case in.Base == "":
		return 0, nil, invalid("PullRequest", "base", "missing_field", "")
	case head == "":
		return 0, nil, invalid("PullRequest", "head", "missing_field", "")
	}
	headSHA, err := s.git.refSHA(ctx, r.path, "refs/heads/"+head)
	if err != nil || headSHA == "" {
		return 0, nil, firstErr(err, invalid("PullRequest", "head", "invalid", ""))
	}
	baseSHA, err := s.git.refSHA(ctx, r.path, "refs/heads/"+in.Base)
	if err != nil || baseSHA == "" {
		return 0, nil, firstErr(err, invalid("PullRequest", "base", "invalid", ""))
	}
	if dup := s.openPull(r, head, in.Base); dup != nil {
		return 0, nil, invalid("PullRequest", "", "custom", "A pull request already exists for "+r.owner+":"+head+".")
	}
	if done, err := s.git.isAncestor(ctx, r.path, headSHA, baseSHA); err != nil || done {
		return 0, nil, firstErr(err, invalid("PullRequest", "", "custom", "No commits between "+in.Base+" and "+head))
	}
	r.lastNumber++
	now := s.now()
	p := &pull{number: r.lastNumber, id: s.id(), title: *in.Title, body: in.Body, open: true, author: rq.who.user,
		head: head, base: in.Base, headSHA: headSHA, created: now, updated: now}
	r.pulls[p.number] = p
	r.issues[p.number] = &issue{}
	pr, err := s.pullJSON(ctx, r, p, true)
	if err != nil {
		return 0, nil, err
	}
	s.emitPull(ctx, r, p, "opened", rq.who.user)
	return http.StatusCreated, pr, nil
}

// openPull is the open pull request from head into base, or nil.
func (s *Server) openPull(r *repo, head, base string) *pull {
	for _, p := range r.pulls {
		if p.open && p.head == head && p.base == base {
			return p
		}
	}
	return nil
}

func (s *Server) editPull(rq *request) (int, any, error) {
	p, err := rq.pull()
	if err != nil {
		return 0, nil, err
	}
	if rq.who.user != p.author {
		if err := rq.need(PermWrite); err != nil {
			return 0, nil, err
		}
	}
	var in struct {
		Title *string `json:"title"`
		Body  *string `json:"body"`
		State *string `json:"state"`
		Base  *string `json:"base"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	ctx, r := rq.Context(), rq.repo
	action := ""
	if in.Title != nil && *in.Title != p.title || in.Body != nil && *in.Body != p.body || in.Base != nil && *in.Base != p.base {
		action = "edited"
	}
	if in.Base != nil && *in.Base != p.base {
		if sha, err := s.git.refSHA(ctx, r.path, "refs/heads/"+*in.Base); err != nil || sha == "" {
			return 0, nil, firstErr(err, invalid("PullRequest", "base", "invalid", ""))
		}
	}
	if in.State != nil {
		switch {
		case *in.State != "open" && *in.State != "closed":
			return 0, nil, invalid("PullRequest", "state", "invalid", "state must be open or closed")
		case *in.State == "open" && !p.open && !p.merged.IsZero():
			return 0, nil, unprocessable("state cannot be changed. The pull request has been merged.")
		case *in.State == "open" && !p.open:
			if s.openPull(r, p.head, p.base) != nil {
				return 0, nil, invalid("PullRequest", "", "custom", "A pull request already exists for "+r.owner+":"+p.head+".")
			}
			p.open, p.closed, action = true, time.Time{}, "reopened"
		case *in.State == "closed" && p.open:
			if err := s.refresh(ctx, r, p); err != nil {
				return 0, nil, err
			}
			p.open, p.closed, action = false, s.now(), "closed"
		}
	}
	if in.Title != nil {
		p.title = *in.Title
	}
	if in.Body != nil {
		p.body = *in.Body
	}
	if in.Base != nil {
		p.base = *in.Base
	}
	if action != "" {
		p.updated = s.now()
		s.emitPull(ctx, r, p, action, rq.who.user)
	}
	pr, err := s.pullJSON(ctx, r, p, true)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, pr, nil
}

func (s *Server) pullCommits(rq *request) (int, any, error) {
	p, err := rq.pull()
	if err != nil {
		return 0, nil, err
	}
	ctx, r := rq.Context(), rq.repo
	if err := s.refresh(ctx, r, p); err != nil {
		return 0, nil, err
	}
	from := p.base
	if !p.merged.IsZero() {
		from = p.mergeSHA + "^1"
	}
	out, err := s.git.out(ctx, r.path, "rev-list", "--reverse", "--topo-order", p.headSHA, "^"+from)
	if err != nil {
		return 0, nil, err
	}
	list := []*github.RepositoryCommit{}
	for _, sha := range strings.Fields(out) {
		c, err := s.commit(ctx, r, sha)
		if err != nil {
			return 0, nil, err
		}
		list = append(list, &github.RepositoryCommit{SHA: c.SHA, NodeID: c.NodeID, Commit: c, Parents: c.Parents,
			URL: github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s/commits/%s", r.owner, r.name, sha)))})
	}
	page, err := paginate(rq, list)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, page, nil
}

// headMoved reacts to branch moving (or vanishing): open pull requests
// from it get a "synchronize" event, or are closed when it was deleted.
func (s *Server) headMoved(ctx context.Context, r *repo, branch string, who *identity) {
	for _, n := range sortedNumbers(r.pulls) {
		p := r.pulls[n]
		if !p.open || p.head != branch {
			continue
		}
		sha, err := s.git.refSHA(ctx, r.path, "refs/heads/"+branch)
		if err != nil {
			s.log.Warn("read head of pull request", "pr", n, "err", err)
			continue
		}
		switch {
		case sha == "":
			p.open, p.closed, p.updated = false, s.now(), s.now()
			s.emitPull(ctx, r, p, "closed", who.user)
		case sha != p.headSHA:
			before := p.headSHA
			p.headSHA, p.updated = sha, s.now()
			if rule := r.protection[p.base]; rule != nil && rule.dismissStale {
				dismissApprovals(p)
			}
			s.emitPullEvent(ctx, r, p, "synchronize", who.user, nil, before)
		}
	}
}

func sortedNumbers(m map[int]*pull) []int {
	ns := make([]int, 0, len(m))
	for n := range m {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

// paginate returns the page ?page= of ?per_page= (30, at most 100) items
// and sets GitHub's Link header for the next and last pages.
func paginate[T any](rq *request, items []T) ([]T, error) {
	q := rq.URL.Query()
	per, page := 30, 1
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, invalid("Pagination", "per_page", "invalid", "")
		}
		per = min(n, 100)
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, invalid("Pagination", "page", "invalid", "")
		}
		page = n
	}
	last := max(1, (len(items)+per-1)/per)
	if page < last {
		link := func(p int, rel string) string {
			u := *rq.URL
			v := u.Query()
			v.Set("page", strconv.Itoa(p))
			v.Set("per_page", strconv.Itoa(per))
			u.RawQuery = v.Encode()
			return fmt.Sprintf("<%s>; rel=%q", rq.s.apiURL(u.RequestURI()), rel)
		}
		rq.link = link(page+1, "next") + ", " + link(last, "last")
	}
	lo := min(len(items), (page-1)*per)
	return append(make([]T, 0, per), items[lo:min(len(items), lo+per)]...), nil
}
