package fakegithub

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v60/github"
)

// Merging: mergeability is computed for real with `git merge-tree
// --write-tree`, merges write real commits, and the base branch moves with
// a compare-and-swap update-ref.

var errNotMergeable = &apiError{Status: http.StatusMethodNotAllowed, Message: "Pull Request is not mergeable"}

// mergeTree merges theirs into ours and returns the merged tree, or
// clean=false when the merge conflicts.
func (s *Server) mergeTree(ctx context.Context, r *repo, ours, theirs string) (tree string, clean bool, err error) {
	out, err := s.git.out(ctx, r.path, "merge-tree", "--write-tree", "--allow-unrelated-histories", ours, theirs)
	switch exitCode(err) {
	case 0:
		tree, _, _ = strings.Cut(out, "\n")
		return tree, true, nil
	case 1:
		return "", false, nil
	}
	return "", false, err
}

// mergeability fills in mergeable, rebaseable and mergeable_state of an
// open pull request: dirty (conflicts), blocked (protection unmet) or
// clean. GitHub computes these in the background and may answer null at
// first; the fake always answers at once.
func (s *Server) mergeability(ctx context.Context, r *repo, p *pull, pr *github.PullRequest) error {
	if !p.open {
		pr.MergeableState = github.String("unknown")
		return nil
	}
	_, clean, err := s.mergeTree(ctx, r, "refs/heads/"+p.base, p.headSHA)
	if err != nil {
		return err
	}
	pr.Mergeable, pr.Rebaseable = github.Bool(clean), github.Bool(clean)
	state := "clean"
	switch {
	case !clean:
		state = "dirty"
	case s.blocker(r, p) != "":
		state = "blocked"
	}
	pr.MergeableState = github.String(state)
	return nil
}

// blocker is why the base branch's protection refuses to merge p, or "".
func (s *Server) blocker(r *repo, p *pull) string {
	rule := r.protection[p.base]
	if rule == nil {
		return ""
	}
	if rule.approvals > 0 {
		approved, changes := 0, false
		for _, st := range latestReviews(p) {
			if u := s.users[st.Login]; u == nil || (u.perm != PermWrite && u.perm != PermAdmin) {
				continue
			}
			switch st.Key {
			case "APPROVED":
				approved++
			case "CHANGES_REQUESTED":
				changes = true
			}
		}
		switch {
		case changes:
			return "Changes have been requested by reviewers with write access."
		case approved < rule.approvals && rule.approvals == 1:
			return "At least 1 approving review is required by reviewers with write access."
		case approved < rule.approvals:
			return fmt.Sprintf("At least %d approving reviews are required by reviewers with write access.", rule.approvals)
		}
	}
	for _, name := range rule.checks {
		switch checkState(r, p.headSHA, name) {
		case "":
			return fmt.Sprintf("Required status check %q is expected.", name)
		case "pending":
			return fmt.Sprintf("Required status check %q is in progress.", name)
		case "failure":
			return fmt.Sprintf("Required status check %q is failing.", name)
		}
	}
	return ""
}

// reviewState is a reviewer's standing review.
type reviewState struct {
	Login string
	Key   string
}

// latestReviews is each write-access reviewer's latest approving or
// change-requesting review, as GitHub counts them for protection.
func latestReviews(p *pull) []reviewState {
	last := map[string]string{}
	var order []string
	for _, rv := range p.reviews {
		st := rv.GetState()
		if st != "APPROVED" && st != "CHANGES_REQUESTED" && st != "DISMISSED" {
			continue
		}
		login := rv.GetUser().GetLogin()
		if _, seen := last[login]; !seen {
			order = append(order, login)
		}
		last[login] = st
	}
	var out []reviewState
	for _, login := range order {
		out = append(out, reviewState{Login: login, Key: last[login]})
	}
	return out
}

type mergeIn struct {
	CommitTitle   *string `json:"commit_title"`
	CommitMessage *string `json:"commit_message"`
	SHA           string  `json:"sha"`
	MergeMethod   string  `json:"merge_method"`
}

func (s *Server) mergePull(rq *request) (int, any, error) {
	if err := rq.need(PermWrite); err != nil {
		return 0, nil, err
	}
	p, err := rq.pull()
	if err != nil {
		return 0, nil, err
	}
	var in mergeIn
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.MergeMethod == "" {
		in.MergeMethod = "merge"
	}
	if in.MergeMethod != "merge" && in.MergeMethod != "squash" && in.MergeMethod != "rebase" {
		return 0, nil, invalid("PullRequest", "merge_method", "invalid", "merge_method must be merge, squash or rebase")
	}
	ctx, r := rq.Context(), rq.repo
	if err := s.refresh(ctx, r, p); err != nil {
		return 0, nil, err
	}
	switch {
	case !p.open:
		return 0, nil, errNotMergeable
	case in.SHA != "" && in.SHA != p.headSHA:
		return 0, nil, &apiError{Status: http.StatusConflict, Message: "Head branch was modified. Review and try the merge again."}
	}
	if why := s.blocker(r, p); why != "" {
		return 0, nil, &apiError{Status: http.StatusMethodNotAllowed, Message: why}
	}
	baseSHA, err := s.git.refSHA(ctx, r.path, "refs/heads/"+p.base)
	if err != nil || baseSHA == "" {
		return 0, nil, firstErr(err, errNotMergeable)
	}
	if _, clean, err := s.mergeTree(ctx, r, baseSHA, p.headSHA); err != nil || !clean {
		return 0, nil, firstErr(err, errNotMergeable)
	}
	sha, err := s.mergeCommit(ctx, r, p, rq.who, in, baseSHA)
	if err != nil {
		return 0, nil, err
	}
	if err := s.git.updateRef(ctx, r.path, "refs/heads/"+p.base, sha, baseSHA); err != nil {
		return 0, nil, &apiError{Status: http.StatusConflict, Message: "Base branch was modified. Review and try the merge again.", Cause: err}
	}
	now := s.now()
	p.open, p.closed, p.merged, p.updated = false, now, now, now
	p.mergedBy, p.mergeSHA = rq.who.user, sha
	s.emitPull(ctx, r, p, "closed", rq.who.user)
	s.branchMoved(ctx, r, p.base, baseSHA, sha, rq.who, nil)
	return http.StatusOK, &github.PullRequestMergeResult{SHA: github.String(sha), Merged: github.Bool(true),
		Message: github.String("Pull Request successfully merged")}, nil
}

// mergeCommit writes the commit that lands p on base by method; GitHub
// signs these, so they are verified.
func (s *Server) mergeCommit(ctx context.Context, r *repo, p *pull, who *identity, in mergeIn, base string) (string, error) {
	author := s.signatureOf(who, nil)
	committer := signature{name: "GitHub", email: "noreply@github.com", when: s.now()}
	env := identityEnv(author, committer)
	var sha string
	var err error
	switch in.MergeMethod {
	case "rebase":
		sha, err = s.rebase(ctx, r, p, base, committer)
	case "squash":
		title, msg := p.title+fmt.Sprintf(" (#%d)", p.number), ""
		if msg, err = s.git.out(ctx, r.path, "log", "--reverse", "--format=* %B", p.headSHA, "^"+base); err != nil {
			return "", err
		}
		sha, err = s.commitMerged(ctx, r, base, p.headSHA, env, message(in, title, msg), base)
	default:
		title := fmt.Sprintf("Merge pull request #%d from %s/%s", p.number, r.owner, p.head)
		sha, err = s.commitMerged(ctx, r, base, p.headSHA, env, message(in, title, p.title), base, p.headSHA)
	}
	if err != nil {
		return "", err
	}
	r.appCommits[sha] = true
	return sha, nil
}

// message is the commit message: the request's title and message, or
// GitHub's defaults for them.
func message(in mergeIn, title, body string) string {
	if in.CommitTitle != nil && *in.CommitTitle != "" {
		title = *in.CommitTitle
	}
	if in.CommitMessage != nil {
		body = *in.CommitMessage
	}
	if body = strings.TrimSpace(body); body == "" {
		return title
	}
	return title + "\n\n" + body
}

// commitMerged commits the merge of head into base with parents.
func (s *Server) commitMerged(ctx context.Context, r *repo, base, head string, env []string, msg string, parents ...string) (string, error) {
	tree, clean, err := s.mergeTree(ctx, r, base, head)
	if err != nil {
		return "", err
	}
	if !clean {
		return "", errNotMergeable
	}
	args := []string{"commit-tree", tree}
	for _, p := range parents {
		args = append(args, "-p", p)
	}
	return s.git.run(ctx, gitRun{dir: r.path, env: env, stdin: []byte(msg)}, append(args, "-F", "-")...)
}

// rebase replays p's commits onto base one by one, each a real three-way
// merge (a cherry-pick), keeping their authors and messages.
func (s *Server) rebase(ctx context.Context, r *repo, p *pull, base string, committer signature) (string, error) {
	out, err := s.git.out(ctx, r.path, "rev-list", "--reverse", "--topo-order", "--parents", p.headSHA, "^"+base)
	if err != nil {
		return "", err
	}
	onto := base
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			return "", &apiError{Status: http.StatusMethodNotAllowed, Message: "This branch can't be rebased"}
		}
		tree, err := s.cherryPickTree(ctx, r, f[1], f[0], onto)
		if err != nil {
			return "", err
		}
		c, err := s.commit(ctx, r, f[0])
		if err != nil {
			return "", err
		}
		a := c.GetAuthor()
		author := signature{name: a.GetName(), email: a.GetEmail(), when: a.GetDate().Time}
		onto, err = s.git.run(ctx, gitRun{dir: r.path, env: identityEnv(author, committer), stdin: []byte(c.GetMessage())},
			"commit-tree", tree, "-p", onto, "-F", "-")
		if err != nil {
			return "", err
		}
	}
	return onto, nil
}

// cherryPickTree is the tree of applying parent..commit onto onto: a
// merge of the two whose merge base is parent. merge-tree finds merge
// bases itself, so the three trees are first wrapped in scratch commits
// with exactly that shape.
func (s *Server) cherryPickTree(ctx context.Context, r *repo, parent, commit, onto string) (string, error) {
	who := signature{name: "fakegithub", email: "fakegithub@localhost", when: s.now()}
	wrap := func(rev string, parents ...string) (string, error) {
		args := []string{"commit-tree", rev + "^{tree}", "-m", "scratch"}
		for _, p := range parents {
			args = append(args, "-p", p)
		}
		return s.git.run(ctx, gitRun{dir: r.path, env: identityEnv(who, who)}, args...)
	}
	b, err := wrap(parent)
	if err != nil {
		return "", err
	}
	theirs, err := wrap(commit, b)
	if err != nil {
		return "", err
	}
	ours, err := wrap(onto, b)
	if err != nil {
		return "", err
	}
	tree, clean, err := s.mergeTree(ctx, r, ours, theirs)
	if err != nil {
		return "", err
	}
	if !clean {
		return "", &apiError{Status: http.StatusMethodNotAllowed, Message: "This branch can't be rebased"}
	}
	return tree, nil
}
