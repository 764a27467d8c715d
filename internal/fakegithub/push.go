package fakegithub

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"
)

// Push webhooks. GitHub sends `push` whenever a branch moves: a git push
// over smart HTTP (one delivery per branch it updated), a pull request
// merged through the API, and a ref created, updated or deleted through
// git/refs. branchMoved is the one path all of them take.

// zeroSHA is the before of a created branch and the after of a deleted
// one, as GitHub writes them.
const zeroSHA = "0000000000000000000000000000000000000000"

// pushCommitLimit is how many commits a push payload lists at most: the
// newest ones, oldest first. (GitHub's webhook documentation now says
// 2048; its events API, and older webhook payloads, stop at 20, and
// consumers take 20 as "maybe truncated".)
const pushCommitLimit = 20

// pushEvent is GitHub's push webhook. go-github v60's PushEvent drops
// created, deleted and forced when false and empty lists, which GitHub
// always sends, so the fake writes its own; github.ParseWebHook("push")
// decodes it into a *github.PushEvent.
type pushEvent struct {
	Ref          string               `json:"ref"`
	Before       string               `json:"before"`
	After        string               `json:"after"`
	Repository   *pushRepository      `json:"repository"`
	Pusher       pushPerson           `json:"pusher"`
	Organization *github.Organization `json:"organization,omitempty"`
	Sender       *github.User         `json:"sender"`
	Installation *github.Installation `json:"installation"`
	Created      bool                 `json:"created"`
	Deleted      bool                 `json:"deleted"`
	Forced       bool                 `json:"forced"`
	BaseRef      *string              `json:"base_ref"`
	Compare      string               `json:"compare"`
	Commits      []*pushCommit        `json:"commits"`
	HeadCommit   *pushCommit          `json:"head_commit"`
}

// pushCommit is one commit of a push payload; the file lists are its
// diff against its first parent, renames as a removal and an addition.
type pushCommit struct {
	ID        string            `json:"id"`
	TreeID    string            `json:"tree_id"`
	Distinct  bool              `json:"distinct"`
	Message   string            `json:"message"`
	Timestamp *github.Timestamp `json:"timestamp"`
	URL       string            `json:"url"`
	Author    pushPerson        `json:"author"`
	Committer pushPerson        `json:"committer"`
	Added     []string          `json:"added"`
	Removed   []string          `json:"removed"`
	Modified  []string          `json:"modified"`
}

// pushPerson is a commit's author or committer (username when the email
// is a known account's), or the pusher.
type pushPerson struct {
	Name     string  `json:"name"`
	Email    *string `json:"email"`
	Username string  `json:"username,omitempty"`
}

// pushRepository is the repository as push payloads carry it, unlike
// every other event: the owner has a name (its login), url is the HTML
// URL, and created_at and pushed_at are Unix seconds.
type pushRepository struct {
	ID            int64             `json:"id"`
	NodeID        string            `json:"node_id"`
	Name          string            `json:"name"`
	FullName      string            `json:"full_name"`
	Private       bool              `json:"private"`
	Owner         *github.User      `json:"owner"`
	HTMLURL       string            `json:"html_url"`
	Description   *string           `json:"description"`
	Fork          bool              `json:"fork"`
	URL           string            `json:"url"`
	CreatedAt     int64             `json:"created_at"`
	UpdatedAt     *github.Timestamp `json:"updated_at"`
	PushedAt      int64             `json:"pushed_at"`
	GitURL        string            `json:"git_url"`
	SSHURL        string            `json:"ssh_url"`
	CloneURL      string            `json:"clone_url"`
	Visibility    string            `json:"visibility"`
	Archived      bool              `json:"archived"`
	Disabled      bool              `json:"disabled"`
	DefaultBranch string            `json:"default_branch"`
	MasterBranch  string            `json:"master_branch"`
	Organization  string            `json:"organization,omitempty"`
}

// branchMoved is what follows any move of branch from before to after
// ("" when it did not exist: created; "" after: deleted): a push delivery,
// then the pull requests from that branch follow it (headMoved). heads
// are the branch heads as they were before the move, for telling pushed
// commits from known ones; nil reads them now, for a caller that moved
// only this branch.
func (s *Server) branchMoved(ctx context.Context, r *repo, branch, before, after string, who *identity, heads map[string]string) {
	if before != after {
		s.emitPush(ctx, r, branch, before, after, who, heads)
	}
	s.headMoved(ctx, r, branch, who)
}

// emitPush sends push for branch moving from before to after, unless no
// installation covers r.
func (s *Server) emitPush(ctx context.Context, r *repo, branch, before, after string, who *identity, heads map[string]string) {
	in := s.hookInstallation(r)
	if in == nil || who == nil || who.user == nil {
		return
	}
	ev, err := s.pushPayload(ctx, r, branch, before, after, who, heads)
	if err != nil {
		s.log.Warn("render a push webhook", "repo", r.name, "branch", branch, "err", err)
		return
	}
	ev.Installation = in
	s.emit("push", "", ev)
}

// pushPayload renders the push of branch from before to after.
func (s *Server) pushPayload(ctx context.Context, r *repo, branch, before, after string, who *identity, heads map[string]string) (*pushEvent, error) {
	html := s.apiURL("/" + r.owner + "/" + r.name)
	sig := s.signatureOf(who, nil)
	ev := &pushEvent{Ref: "refs/heads/" + branch, Before: orZero(before), After: orZero(after),
		Repository: s.pushRepository(r), Pusher: pushPerson{Name: who.user.login, Email: github.String(sig.email)},
		Organization: s.organization(r), Sender: s.user(who.user),
		Created: before == "", Deleted: after == "", Commits: []*pushCommit{}}
	ev.Compare = html + "/compare/" + ev.Before[:12] + "..." + ev.After[:12]
	if ev.Created {
		ev.Compare = html + "/compare/" + branch
	}
	if ev.Deleted {
		return ev, nil
	}
	if !ev.Created {
		ff, err := s.git.isAncestor(ctx, r.path, before, after)
		if err != nil {
			return nil, err
		}
		ev.Forced = !ff
	}
	if heads == nil {
		var err error
		if heads, err = s.git.branches(ctx, r.path); err != nil {
			return nil, err
		}
	}
	// Distinct commits are those no other branch had: new to the
	// repository with this push.
	known := []string{"--not"}
	if !ev.Created {
		known = append(known, before)
	}
	for _, b := range slices.Sorted(maps.Keys(heads)) {
		if b != branch {
			known = append(known, heads[b])
		}
	}
	fresh, err := s.git.out(ctx, r.path, append([]string{"rev-list", after}, known...)...)
	if err != nil {
		return nil, err
	}
	distinct := map[string]bool{}
	for _, sha := range strings.Fields(fresh) {
		distinct[sha] = true
	}
	// A new branch lists the commits no branch had; a moved one those
	// between before and after, distinct or not.
	list := fresh
	if !ev.Created {
		if list, err = s.git.out(ctx, r.path, "rev-list", "--topo-order", after, "^"+before); err != nil {
			return nil, err
		}
	}
	shas := strings.Fields(list)
	shas = shas[:min(len(shas), pushCommitLimit)]
	slices.Reverse(shas)
	for _, sha := range shas {
		c, err := s.pushCommit(ctx, r, sha, distinct[sha])
		if err != nil {
			return nil, err
		}
		ev.Commits = append(ev.Commits, c)
	}
	if ev.HeadCommit, err = s.pushCommit(ctx, r, after, distinct[after]); err != nil {
		return nil, err
	}
	return ev, nil
}

// pushCommit renders commit sha for a push payload.
func (s *Server) pushCommit(ctx context.Context, r *repo, sha string, distinct bool) (*pushCommit, error) {
	c, err := s.commit(ctx, r, sha)
	if err != nil || c == nil {
		return nil, firstErr(err, fmt.Errorf("%s is not a commit", sha))
	}
	args := []string{"diff-tree", "-r", "--no-renames", "--name-status", "-z", "--no-commit-id"}
	if len(c.Parents) == 0 {
		args = append(args, "--root", sha)
	} else {
		args = append(args, c.Parents[0].GetSHA(), sha)
	}
	out, err := s.git.raw(ctx, gitRun{dir: r.path}, args...)
	if err != nil {
		return nil, err
	}
	pc := &pushCommit{ID: sha, TreeID: c.GetTree().GetSHA(), Distinct: distinct,
		Message: strings.TrimRight(c.GetMessage(), "\n"), Timestamp: c.GetAuthor().Date,
		URL:    s.apiURL(fmt.Sprintf("/%s/%s/commit/%s", r.owner, r.name, sha)),
		Author: s.pushPerson(c.GetAuthor()), Committer: s.pushPerson(c.GetCommitter()),
		Added: []string{}, Removed: []string{}, Modified: []string{}}
	f := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	for i := 0; i+1 < len(f); i += 2 {
		switch f[i] {
		case "A":
			pc.Added = append(pc.Added, f[i+1])
		case "D":
			pc.Removed = append(pc.Removed, f[i+1])
		default: // M, T
			pc.Modified = append(pc.Modified, f[i+1])
		}
	}
	return pc, nil
}

// pushPerson is a commit signature, with the login of the account whose
// no-reply email it carries (GitHub's own "web-flow" for noreply@github.com).
func (s *Server) pushPerson(a *github.CommitAuthor) pushPerson {
	p := pushPerson{Name: a.GetName(), Email: github.String(a.GetEmail())}
	if a.GetEmail() == "noreply@github.com" {
		p.Username = "web-flow"
		return p
	}
	local, ok := strings.CutSuffix(a.GetEmail(), "@users.noreply.github.com")
	if !ok {
		return p
	}
	for _, u := range s.users {
		if local == u.login || local == fmt.Sprintf("%d+%s", u.id, u.login) {
			p.Username = u.login
		}
	}
	return p
}

// pushRepository is r as push payloads show it.
func (s *Server) pushRepository(r *repo) *pushRepository {
	full := r.owner + "/" + r.name
	owner := s.owner(r.owner)
	owner.Name = owner.Login
	host, hostname := s.http.URL, s.http.URL
	if u, err := url.Parse(s.http.URL); err == nil {
		host, hostname = u.Host, u.Hostname()
	}
	pr := &pushRepository{ID: r.id, NodeID: fmt.Sprintf("R_%d", r.id), Name: r.name, FullName: full, Private: true,
		Owner: owner, HTMLURL: s.apiURL("/" + full), URL: s.apiURL("/" + full),
		CreatedAt: r.created.Unix(), UpdatedAt: ghTime(s.now()), PushedAt: s.now().Unix(),
		GitURL: "git://" + host + "/" + full + ".git", SSHURL: "git@" + hostname + ":" + full + ".git",
		CloneURL: s.apiURL("/" + full + ".git"), Visibility: "private",
		DefaultBranch: r.defaultBranch, MasterBranch: r.defaultBranch}
	if org := s.organization(r); org != nil {
		pr.Organization = org.GetLogin()
	}
	return pr
}

// organization is r's owner when it is an organisation, else nil.
func (s *Server) organization(r *repo) *github.Organization {
	a := s.users[r.owner]
	if a == nil || a.typ != "Organization" {
		return nil
	}
	return &github.Organization{Login: github.String(a.login), ID: github.Int64(a.id),
		NodeID: github.String(fmt.Sprintf("U_%d", a.id)), URL: github.String(s.apiURL("/orgs/" + a.login))}
}

// orZero is sha, or zeroSHA for none.
func orZero(sha string) string {
	if sha == "" {
		return zeroSHA
	}
	return sha
}
