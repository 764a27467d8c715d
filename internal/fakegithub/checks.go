package fakegithub

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-github/v60/github"
)

// checkRun is a check run as GitHub stores it.
type checkRun = github.CheckRun

var (
	checkStatuses    = []string{"queued", "in_progress", "completed", "waiting", "requested", "pending"}
	checkConclusions = []string{"action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"}
)

func (s *Server) checkRoutes() {
	s.api("POST /repos/{owner}/{repo}/check-runs", authToken, s.createCheckRun)
	s.api("PATCH /repos/{owner}/{repo}/check-runs/{id}", authToken, s.updateCheckRun)
	s.api("GET /repos/{owner}/{repo}/check-runs/{id}", authToken, func(rq *request) (int, any, error) {
		cr, err := rq.checkRun()
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, cr, nil
	})
	s.api("POST /repos/{owner}/{repo}/check-runs/{id}/rerequest", authToken, func(rq *request) (int, any, error) {
		if rq.who.kind != TokenInstallation {
			return 0, nil, appOnly()
		}
		cr, err := rq.checkRun()
		if err != nil {
			return 0, nil, err
		}
		s.emitCheckRun(rq.Context(), rq.repo, cr, "rerequested", rq.who.user)
		return http.StatusCreated, struct{}{}, nil
	})
	s.api("POST /repos/{owner}/{repo}/statuses/{sha}", authToken, s.createStatus)
	// {ref} may hold slashes (a branch like canarybot/qwen), which a
	// ServeMux wildcard cannot match mid-path, so one route serves both.
	s.apiAs("GET /repos/{owner}/{repo}/commits/{ref...}", func(r *http.Request) string {
		return "GET /repos/{owner}/{repo}/commits/{ref}/" + path.Base(r.URL.Path)
	}, authToken,
		func(rq *request) (int, any, error) {
			full := rq.PathValue("ref")
			if ref, ok := strings.CutSuffix(full, "/check-runs"); ok {
				return s.listCheckRuns(rq, ref)
			}
			if ref, ok := strings.CutSuffix(full, "/status"); ok {
				return s.combinedStatus(rq, ref)
			}
			return 0, nil, errNotFound
		})
}

func appOnly() *apiError {
	return &apiError{Status: http.StatusForbidden, Message: "You must authenticate via a GitHub App.",
		DocURL: "https://docs.github.com/rest/checks/runs#create-a-check-run"}
}

func (rq *request) checkRun() (*checkRun, error) {
	id, err := strconv.ParseInt(rq.PathValue("id"), 10, 64)
	if err != nil || rq.repo.checkRuns[id] == nil {
		return nil, errNotFound
	}
	return rq.repo.checkRuns[id], nil
}

// checkRunIn is the body of POST and PATCH check-runs.
type checkRunIn struct {
	Name        *string                `json:"name"`
	HeadSHA     *string                `json:"head_sha"`
	DetailsURL  *string                `json:"details_url"`
	ExternalID  *string                `json:"external_id"`
	Status      *string                `json:"status"`
	Conclusion  *string                `json:"conclusion"`
	StartedAt   *github.Timestamp      `json:"started_at"`
	CompletedAt *github.Timestamp      `json:"completed_at"`
	Output      *github.CheckRunOutput `json:"output"`
}

func (s *Server) createCheckRun(rq *request) (int, any, error) {
	if rq.who.kind != TokenInstallation {
		return 0, nil, appOnly()
	}
	var in checkRunIn
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	ctx, r := rq.Context(), rq.repo
	switch {
	case in.Name == nil || *in.Name == "":
		return 0, nil, invalid("CheckRun", "name", "missing_field", "")
	case in.HeadSHA == nil:
		return 0, nil, invalid("CheckRun", "head_sha", "missing_field", "")
	}
	if typ, err := s.git.shaType(ctx, r.path, *in.HeadSHA); err != nil || typ != "commit" {
		return 0, nil, firstErr(err, unprocessable("No commit found for SHA: %s", *in.HeadSHA))
	}
	id := s.id()
	cr := &checkRun{ID: github.Int64(id), NodeID: github.String(fmt.Sprintf("CR_%d", id)),
		Name: in.Name, HeadSHA: in.HeadSHA, Status: github.String("queued"), StartedAt: ghTime(s.now()),
		URL:        github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s/check-runs/%d", r.owner, r.name, id))),
		HTMLURL:    github.String(s.apiURL(fmt.Sprintf("/%s/%s/runs/%d", r.owner, r.name, id))),
		App:        s.app(),
		CheckSuite: &github.CheckSuite{ID: github.Int64(id)},
	}
	if err := s.applyCheckRun(cr, in); err != nil {
		return 0, nil, err
	}
	r.checkRuns[id] = cr
	s.emitCheckRun(ctx, r, cr, "created", rq.who.user)
	if cr.GetStatus() == "completed" {
		s.emitCheckRun(ctx, r, cr, "completed", rq.who.user)
	}
	return http.StatusCreated, s.withPulls(r, cr), nil
}

func (s *Server) updateCheckRun(rq *request) (int, any, error) {
	if rq.who.kind != TokenInstallation {
		return 0, nil, appOnly()
	}
	cr, err := rq.checkRun()
	if err != nil {
		return 0, nil, err
	}
	var in checkRunIn
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.HeadSHA != nil && *in.HeadSHA != cr.GetHeadSHA() {
		return 0, nil, invalid("CheckRun", "head_sha", "invalid", "head_sha cannot be changed")
	}
	was := cr.GetStatus()
	next := *cr
	if in.Name != nil && *in.Name == "" {
		return 0, nil, invalid("CheckRun", "name", "invalid", "")
	}
	if err := s.applyCheckRun(&next, in); err != nil {
		return 0, nil, err
	}
	*cr = next
	if was != "completed" && cr.GetStatus() == "completed" {
		s.emitCheckRun(rq.Context(), rq.repo, cr, "completed", rq.who.user)
	}
	return http.StatusOK, s.withPulls(rq.repo, cr), nil
}

// applyCheckRun validates in and applies it to cr. A conclusion implies
// status completed, as GitHub does.
func (s *Server) applyCheckRun(cr *checkRun, in checkRunIn) error {
	if in.Status != nil && !slices.Contains(checkStatuses, *in.Status) {
		return invalid("CheckRun", "status", "invalid", "status must be one of "+fmt.Sprint(checkStatuses))
	}
	if in.Conclusion != nil && !slices.Contains(checkConclusions, *in.Conclusion) {
		return invalid("CheckRun", "conclusion", "invalid", "conclusion must be one of "+fmt.Sprint(checkConclusions))
	}
	if in.Output != nil && (in.Output.GetTitle() == "" || in.Output.GetSummary() == "") {
		return invalid("CheckRun", "output", "missing_field", "output needs a title and a summary")
	}
	for _, set := range []struct {
		dst **string
		src *string
	}{{&cr.Name, in.Name}, {&cr.DetailsURL, in.DetailsURL}, {&cr.ExternalID, in.ExternalID},
		{&cr.Status, in.Status}, {&cr.Conclusion, in.Conclusion}} {
		if set.src != nil {
			*set.dst = set.src
		}
	}
	if in.Output != nil {
		cr.Output = in.Output
	}
	if in.StartedAt != nil {
		cr.StartedAt = in.StartedAt
	}
	if in.Conclusion != nil {
		cr.Status = github.String("completed")
	}
	if cr.GetStatus() == "completed" {
		if cr.Conclusion == nil {
			return invalid("CheckRun", "conclusion", "missing_field", "a completed check run needs a conclusion")
		}
		cr.CompletedAt = ghTime(s.now())
		if in.CompletedAt != nil {
			cr.CompletedAt = in.CompletedAt
		}
	}
	return nil
}

// withPulls is cr with the open pull requests whose head is its commit.
func (s *Server) withPulls(r *repo, cr *checkRun) *checkRun {
	out := *cr
	out.PullRequests = nil
	for _, n := range sortedNumbers(r.pulls) {
		p := r.pulls[n]
		if p.open && p.headSHA == cr.GetHeadSHA() {
			out.PullRequests = append(out.PullRequests, &github.PullRequest{ID: github.Int64(p.id), Number: github.Int(n),
				URL:  github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s/pulls/%d", r.owner, r.name, n))),
				Head: &github.PullRequestBranch{Ref: github.String(p.head), SHA: github.String(p.headSHA)},
				Base: &github.PullRequestBranch{Ref: github.String(p.base)}})
		}
	}
	return &out
}

// commitOf resolves a {ref} path value (SHA, branch or tag) to a commit.
func (s *Server) commitOf(ctx context.Context, r *repo, ref string) (string, error) {
	sha, err := s.git.resolve(ctx, r.path, ref, "commit")
	if err != nil || sha == "" {
		return "", firstErr(err, unprocessable("No commit found for SHA: %s", ref))
	}
	return sha, nil
}

func (s *Server) listCheckRuns(rq *request, ref string) (int, any, error) {
	r, q := rq.repo, rq.URL.Query()
	sha, err := s.commitOf(rq.Context(), r, ref)
	if err != nil {
		return 0, nil, err
	}
	ids := make([]int64, 0, len(r.checkRuns))
	for id := range r.checkRuns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	slices.Reverse(ids) // newest first
	seen := map[string]bool{}
	list := []*checkRun{}
	for _, id := range ids {
		cr := r.checkRuns[id]
		switch {
		case cr.GetHeadSHA() != sha:
		case q.Get("check_name") != "" && cr.GetName() != q.Get("check_name"):
		case q.Get("status") != "" && cr.GetStatus() != q.Get("status"):
		case q.Get("filter") != "all" && seen[cr.GetName()]:
		default:
			seen[cr.GetName()] = true
			list = append(list, s.withPulls(r, cr))
		}
	}
	page, err := paginate(rq, list)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &github.ListCheckRunsResults{Total: github.Int(len(list)), CheckRuns: page}, nil
}

// checkState is the state of the newest check run (or else commit
// status) called name on sha: success, pending, failure, or "" for none.
func checkState(r *repo, sha, name string) string {
	var best *checkRun
	for _, cr := range r.checkRuns {
		if cr.GetHeadSHA() == sha && cr.GetName() == name && (best == nil || cr.GetID() > best.GetID()) {
			best = cr
		}
	}
	if best != nil {
		switch {
		case best.GetStatus() != "completed":
			return "pending"
		case slices.Contains([]string{"success", "neutral", "skipped"}, best.GetConclusion()):
			return "success"
		}
		return "failure"
	}
	for _, st := range slices.Backward(r.statuses[sha]) {
		if st.GetContext() == name {
			if st.GetState() == "error" {
				return "failure"
			}
			return st.GetState()
		}
	}
	return ""
}

func (s *Server) createStatus(rq *request) (int, any, error) {
	if err := rq.need(PermWrite); err != nil {
		return 0, nil, err
	}
	var in struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
		Context     string `json:"context"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if !slices.Contains([]string{"error", "failure", "pending", "success"}, in.State) {
		return 0, nil, invalid("Status", "state", "invalid", "state must be error, failure, pending or success")
	}
	sha := rq.PathValue("sha")
	if typ, err := s.git.shaType(rq.Context(), rq.repo.path, sha); err != nil || typ != "commit" {
		return 0, nil, firstErr(err, unprocessable("No commit found for SHA: %s", sha))
	}
	if in.Context == "" {
		in.Context = "default"
	}
	id, now := s.id(), ghTime(s.now())
	st := &github.RepoStatus{ID: github.Int64(id), NodeID: github.String(fmt.Sprintf("SC_%d", id)),
		State: github.String(in.State), TargetURL: github.String(in.TargetURL), Description: github.String(in.Description),
		Context: github.String(in.Context), Creator: s.user(rq.who.user), CreatedAt: now, UpdatedAt: now,
		URL: github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s/statuses/%s", rq.repo.owner, rq.repo.name, sha)))}
	rq.repo.statuses[sha] = append(rq.repo.statuses[sha], st)
	return http.StatusCreated, st, nil
}

// combinedStatus is GitHub's combined status: the newest status per
// context; failure if any failed or errored, pending if any is pending or
// there are none, else success.
func (s *Server) combinedStatus(rq *request, ref string) (int, any, error) {
	r := rq.repo
	sha, err := s.commitOf(rq.Context(), r, ref)
	if err != nil {
		return 0, nil, err
	}
	seen := map[string]bool{}
	latest := []*github.RepoStatus{}
	for _, st := range slices.Backward(r.statuses[sha]) {
		if !seen[st.GetContext()] {
			seen[st.GetContext()] = true
			latest = append(latest, st)
		}
	}
	state := "success"
	if len(latest) == 0 {
		state = "pending"
	}
	for _, st := range latest {
		switch st.GetState() {
		case "error", "failure":
			state = "failure"
		case "pending":
			if state != "failure" {
				state = "pending"
			}
		}
	}
	return http.StatusOK, &github.CombinedStatus{State: github.String(state), SHA: github.String(sha),
		TotalCount: github.Int(len(latest)), Statuses: latest,
		RepositoryURL: github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s", r.owner, r.name))),
		CommitURL:     github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s/commits/%s", r.owner, r.name, sha)))}, nil
}

// RerequestCheckRun re-requests check run id as login would with the
// "Re-run" button: GitHub sends the App a check_run "rerequested" event.
func (s *Server) RerequestCheckRun(owner, name string, id int64, login string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoKey(owner, name)]
	if r == nil || r.checkRuns[id] == nil {
		return fmt.Errorf("no check run %d in %s/%s", id, owner, name)
	}
	u := s.users[login]
	if u == nil || u.perm == PermNone {
		return fmt.Errorf("user %q does not exist or has no access", login)
	}
	s.emitCheckRun(s.t.Context(), r, r.checkRuns[id], "rerequested", u)
	return nil
}
