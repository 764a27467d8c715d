package fakegithub

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v60/github"
)

// reviewStates maps a review event to the state GitHub stores.
var reviewStates = map[string]string{"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED", "": "PENDING"}

func (s *Server) listReviews(rq *request) (int, any, error) {
	p, err := rq.pull()
	if err != nil {
		return 0, nil, err
	}
	page, err := paginate(rq, p.reviews)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, page, nil
}

func (s *Server) createReview(rq *request) (int, any, error) {
	p, err := rq.pull()
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Body     string `json:"body"`
		Event    string `json:"event"`
		CommitID string `json:"commit_id"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	rv, err := s.addReview(rq.Context(), rq.repo, p, rq.who, in.Event, in.Body, in.CommitID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, rv, nil
}

// reviewRefused is GitHub's 422 for a review it will not take.
func reviewRefused(why string) *apiError {
	return &apiError{Status: http.StatusUnprocessableEntity, Message: "Unprocessable Entity", Errors: []any{why}}
}

// addReview records who's review of p and, unless it is pending, emits
// pull_request_review submitted. The author may only comment.
func (s *Server) addReview(ctx context.Context, r *repo, p *pull, who *identity, event, body, commitID string) (*github.PullRequestReview, error) {
	event = strings.ToUpper(event)
	state, ok := reviewStates[event]
	if !ok {
		return nil, invalid("PullRequestReview", "event", "invalid", "event must be APPROVE, REQUEST_CHANGES or COMMENT")
	}
	switch {
	case who.user == p.author && event == "APPROVE":
		return nil, reviewRefused("Can not approve your own pull request")
	case who.user == p.author && event == "REQUEST_CHANGES":
		return nil, reviewRefused("Can not request changes on your own pull request")
	case (event == "REQUEST_CHANGES" || event == "COMMENT") && strings.TrimSpace(body) == "":
		return nil, reviewRefused(fmt.Sprintf("Body is required when event is %s", event))
	case !p.open:
		return nil, reviewRefused("Can not review a closed pull request")
	}
	if err := s.refresh(ctx, r, p); err != nil {
		return nil, err
	}
	if commitID == "" {
		commitID = p.headSHA
	}
	id := s.id()
	rv := &github.PullRequestReview{ID: github.Int64(id), NodeID: github.String(fmt.Sprintf("PRR_%d", id)),
		User: s.user(who.user), Body: github.String(body), CommitID: github.String(commitID), State: github.String(state),
		HTMLURL:           github.String(s.apiURL(fmt.Sprintf("/%s/%s/pull/%d#pullrequestreview-%d", r.owner, r.name, p.number, id))),
		PullRequestURL:    github.String(s.apiURL(fmt.Sprintf("/repos/%s/%s/pulls/%d", r.owner, r.name, p.number))),
		AuthorAssociation: github.String(association(who.user)),
	}
	if state != "PENDING" {
		rv.SubmittedAt = ghTime(s.now())
	}
	p.reviews = append(p.reviews, rv)
	if state != "PENDING" {
		s.emitReview(ctx, r, p, rv, who.user)
	}
	return rv, nil
}

// Review reviews pull request pr as login (event APPROVE, REQUEST_CHANGES
// or COMMENT), through the same code as POST .../pulls/{n}/reviews, and
// emits the pull_request_review webhook.
func (s *Server) Review(owner, name string, pr int, login, event, body string) (*github.PullRequestReview, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, who, err := s.actAs(owner, name, pr, login)
	if err != nil {
		return nil, err
	}
	return s.addReview(s.t.Context(), r, r.pulls[pr], who, event, body, "")
}
