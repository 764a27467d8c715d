package fakegithub

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// Installations, as GitHub has them: the App is installed on accounts
// (organisations or users), each installation covering either all of its
// account's repositories ("all") or a listed set ("selected"). A token
// from an installation reaches only the repositories that installation
// covers; elsewhere it is answered 404, as GitHub answers.
//
// The default installation, Options.InstallationID, belongs to no account
// and covers every repository that no other installation covers, so a
// server without AddInstallation behaves as one installation of the App
// on everything. The rule, for a repository owner/name: the installation
// on account owner covers it when it is "all" or lists name; otherwise
// the default installation does, unless it was deleted, and then none
// does (GitHub then delivers no webhooks about it to the App).

// Repository selections of an installation.
const (
	selectionAll      = "all"
	selectionSelected = "selected"
)

// installation is one installation of the App.
type installation struct {
	id        int64
	account   *account // nil for the default installation
	selection string   // selectionAll or selectionSelected
	selected  map[string]bool
	created   time.Time
	updated   time.Time
}

// initInstallations creates the default installation.
func (s *Server) initInstallations() {
	s.installs = map[int64]*installation{s.opts.InstallationID: {id: s.opts.InstallationID,
		selection: selectionAll, created: s.now(), updated: s.now()}}
	s.nextInstall = s.opts.InstallationID
}

// AddInstallation installs the App on account (an organisation, created
// if unknown, or a user added with AddUser) and returns the new
// installation's ID. With repos (names of account's existing
// repositories) it covers those only ("selected"); without, every
// repository of account, present and future ("all"). It emits
// installation created. GitHub allows one installation per account.
func (s *Server) AddInstallation(account string, repos ...string) int64 {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !validName.MatchString(account) {
		s.t.Fatalf("fakegithub: AddInstallation: bad account %q", account)
	}
	for _, in := range s.installs {
		if in.account != nil && strings.EqualFold(in.account.login, account) {
			s.t.Fatalf("fakegithub: AddInstallation(%q): the App is already installed there (installation %d)", account, in.id)
		}
	}
	s.owner(account)
	s.nextInstall++
	in := &installation{id: s.nextInstall, account: s.users[account], selection: selectionAll,
		created: s.now(), updated: s.now()}
	if len(repos) > 0 {
		in.selection, in.selected = selectionSelected, map[string]bool{}
		for _, r := range s.accountRepos(in, repos) {
			in.selected[repoKey(r.owner, r.name)] = true
		}
	}
	s.installs[in.id] = in
	s.emitInstallation(in, "created", s.reposOf(in))
	return in.id
}

// AddInstallationRepos adds repos (names of the account's repositories)
// to installation id, which must be a "selected" installation made by
// AddInstallation, and emits installation_repositories added with the
// ones it did not cover yet (no event when there are none).
func (s *Server) AddInstallationRepos(id int64, repos ...string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.accountInstallation("AddInstallationRepos", id)
	if in.selection == selectionAll {
		s.t.Fatalf("fakegithub: AddInstallationRepos(%d): it already covers all of %s's repositories", id, in.account.login)
	}
	var added []*repo
	for _, r := range s.accountRepos(in, repos) {
		if k := repoKey(r.owner, r.name); !in.selected[k] {
			in.selected[k] = true
			added = append(added, r)
		}
	}
	if len(added) > 0 {
		in.updated = s.now()
		s.emitInstallationRepos(in, "added", added)
	}
}

// RemoveInstallationRepos takes repos (names of the account's
// repositories) out of installation id, one made by AddInstallation, and
// emits installation_repositories removed with the ones it covered (no
// event when there are none). An "all" installation becomes "selected",
// keeping the account's other repositories, as GitHub does. Removed
// repositories fall to the default installation.
func (s *Server) RemoveInstallationRepos(id int64, repos ...string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.accountInstallation("RemoveInstallationRepos", id)
	gone := s.accountRepos(in, repos)
	if in.selection == selectionAll {
		kept := s.reposOf(in)
		in.selection, in.selected = selectionSelected, map[string]bool{}
		for _, r := range kept {
			in.selected[repoKey(r.owner, r.name)] = true
		}
	}
	var removed []*repo
	for _, r := range gone {
		if k := repoKey(r.owner, r.name); in.selected[k] {
			delete(in.selected, k)
			removed = append(removed, r)
		}
	}
	if len(removed) > 0 {
		in.updated = s.now()
		s.emitInstallationRepos(in, "removed", removed)
	}
}

// DeleteInstallation uninstalls installation id (the default one too):
// its tokens answer 401 Bad credentials from now on, its ID 404, and its
// repositories fall to the default installation (or to none). It emits
// installation deleted with the repositories it covered.
func (s *Server) DeleteInstallation(id int64) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.installs[id]
	if in == nil {
		s.t.Fatalf("fakegithub: DeleteInstallation(%d): no such installation", id)
	}
	covered := s.reposOf(in)
	delete(s.installs, id)
	for v, tok := range s.tokens {
		if tok.kind == TokenInstallation && tok.inst == id {
			delete(s.tokens, v)
		}
	}
	s.emitInstallation(in, "deleted", covered)
}

// InstallationOf is the ID of the installation covering owner/name, 0
// when none does.
func (s *Server) InstallationOf(owner, name string) int64 {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoKey(owner, name)]
	if r == nil {
		s.t.Fatalf("fakegithub: InstallationOf: no repository %s/%s", owner, name)
	}
	if in := s.covering(r); in != nil {
		return in.id
	}
	return 0
}

// accountInstallation is installation id made by AddInstallation, for
// the exported method op.
func (s *Server) accountInstallation(op string, id int64) *installation {
	in := s.installs[id]
	if in == nil || in.account == nil {
		s.t.Fatalf("fakegithub: %s(%d): no installation made by AddInstallation has that ID", op, id)
	}
	return in
}

// accountRepos resolves names to repositories of in's account.
func (s *Server) accountRepos(in *installation, names []string) []*repo {
	out := make([]*repo, 0, len(names))
	for _, n := range names {
		r := s.repos[repoKey(in.account.login, n)]
		if r == nil {
			s.t.Fatalf("fakegithub: installation on %s: no repository %s/%s", in.account.login, in.account.login, n)
		}
		out = append(out, r)
	}
	return out
}

// covers reports whether in, an installation on an account, covers r.
func (in *installation) covers(r *repo) bool {
	if in.account == nil || !strings.EqualFold(in.account.login, r.owner) {
		return false
	}
	return in.selection == selectionAll || in.selected[repoKey(r.owner, r.name)]
}

// covering is the installation covering r (see the rule above), nil when
// none does.
func (s *Server) covering(r *repo) *installation {
	for _, in := range s.installs {
		if in.covers(r) {
			return in
		}
	}
	return s.installs[s.opts.InstallationID]
}

// reposOf lists the repositories in covers, in creation order.
func (s *Server) reposOf(in *installation) []*repo {
	var out []*repo
	for _, r := range s.repoOrder {
		if s.covering(r) == in {
			out = append(out, r)
		}
	}
	return out
}

// installationByPath is the live installation of the route's {id}.
func (s *Server) installationByPath(rq *request) (*installation, error) {
	id, err := strconv.ParseInt(rq.PathValue("id"), 10, 64)
	if err != nil || s.installs[id] == nil {
		return nil, errNotFound
	}
	return s.installs[id], nil
}

// installationJSON is in as GitHub's REST API and installation events
// show it.
func (s *Server) installationJSON(in *installation) *github.Installation {
	out := &github.Installation{ID: github.Int64(in.id), NodeID: installationNodeID(in.id),
		AppID: github.Int64(s.opts.AppID), AppSlug: github.String(s.opts.AppSlug),
		AccessTokensURL:     github.String(s.apiURL(fmt.Sprintf("/app/installations/%d/access_tokens", in.id))),
		RepositoriesURL:     github.String(s.apiURL("/installation/repositories")),
		RepositorySelection: github.String(in.selection), Permissions: installationPermissions(),
		Events: s.app().Events, TargetType: github.String("Organization"),
		CreatedAt: ghTime(in.created), UpdatedAt: ghTime(in.updated),
	}
	if a := in.account; a != nil {
		out.Account, out.TargetID, out.TargetType = s.user(a), github.Int64(a.id), github.String(a.typ)
		settings := fmt.Sprintf("/organizations/%s/settings/installations/%d", a.login, in.id)
		if a.typ != "Organization" {
			settings = fmt.Sprintf("/settings/installations/%d", in.id)
		}
		out.HTMLURL = github.String(s.apiURL(settings))
	}
	return out
}

// hookInstallation is the installation {id, node_id} that webhook
// deliveries about r carry; nil when no installation covers r, and then
// GitHub delivers nothing about r to the App.
func (s *Server) hookInstallation(r *repo) *github.Installation {
	in := s.covering(r)
	if in == nil {
		return nil
	}
	return &github.Installation{ID: github.Int64(in.id), NodeID: installationNodeID(in.id)}
}

// installationNodeID is the GraphQL node ID of installation id.
func installationNodeID(id int64) *string {
	return github.String(fmt.Sprintf("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u%d", id))
}

// hookRepos is rs as installation events list them: id, node_id, name,
// full_name and private.
func hookRepos(rs []*repo) []*github.Repository {
	out := make([]*github.Repository, 0, len(rs))
	for _, r := range rs {
		out = append(out, &github.Repository{ID: github.Int64(r.id), NodeID: github.String(fmt.Sprintf("R_%d", r.id)),
			Name: github.String(r.name), FullName: github.String(r.owner + "/" + r.name), Private: github.Bool(true)})
	}
	return out
}

// installSender is who acts on installation events: the account itself
// (GitHub names the person who clicked; the fake has none), or the App's
// bot for the default installation.
func (s *Server) installSender(in *installation) *github.User {
	if in.account == nil {
		return s.user(s.bot)
	}
	return s.user(in.account)
}

// emitInstallation sends installation with action about in and repos.
func (s *Server) emitInstallation(in *installation, action string, repos []*repo) {
	s.emit("installation", action, &github.InstallationEvent{Action: github.String(action),
		Repositories: hookRepos(repos), Installation: s.installationJSON(in), Sender: s.installSender(in)})
}

// emitInstallationRepos sends installation_repositories added or removed.
func (s *Server) emitInstallationRepos(in *installation, action string, repos []*repo) {
	ev := &github.InstallationRepositoriesEvent{Action: github.String(action),
		RepositorySelection: github.String(in.selection), Installation: s.installationJSON(in),
		Sender: s.installSender(in)}
	if action == "added" {
		ev.RepositoriesAdded = hookRepos(repos)
	} else {
		ev.RepositoriesRemoved = hookRepos(repos)
	}
	s.emit("installation_repositories", action, ev)
}

// installationList is every live installation, by ID.
func (s *Server) installationList() []*github.Installation {
	ids := make([]int64, 0, len(s.installs))
	for id := range s.installs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]*github.Installation, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.installationJSON(s.installs[id]))
	}
	return out
}

// installationRepos is GET /installation/repositories's answer, with the
// repository_selection that go-github's ListRepositories leaves out.
type installationRepos struct {
	TotalCount          int                  `json:"total_count"`
	RepositorySelection string               `json:"repository_selection"`
	Repositories        []*github.Repository `json:"repositories"`
}

func (s *Server) installationRoutes() {
	s.api("POST /app/installations/{id}/access_tokens", authJWT, s.createAccessToken)
	s.api("GET /app/installations", authJWT, func(rq *request) (int, any, error) {
		page, err := paginate(rq, s.installationList())
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, page, nil
	})
	s.api("GET /app/installations/{id}", authJWT, func(rq *request) (int, any, error) {
		in, err := s.installationByPath(rq)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, s.installationJSON(in), nil
	})
	s.api("GET /repos/{owner}/{repo}/installation", authJWT, func(rq *request) (int, any, error) {
		in := s.covering(rq.repo)
		if in == nil {
			return 0, nil, errNotFound
		}
		return http.StatusOK, s.installationJSON(in), nil
	})
	s.api("GET /installation/repositories", authToken, s.listInstallationRepos)
}

// listInstallationRepos serves GET /installation/repositories, the
// repositories of the token's installation, paginated.
func (s *Server) listInstallationRepos(rq *request) (int, any, error) {
	in := s.installs[rq.who.inst]
	if rq.who.kind != TokenInstallation || in == nil {
		return 0, nil, forbidden("You must authenticate with an installation access token in order to list repositories for an installation.")
	}
	var all []*github.Repository
	for _, r := range s.reposOf(in) {
		all = append(all, s.repository(r))
	}
	page, err := paginate(rq, all)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &installationRepos{TotalCount: len(all), RepositorySelection: in.selection, Repositories: page}, nil
}

// createAccessToken serves POST /app/installations/{id}/access_tokens: a
// token of that installation, listing the repositories it covers.
func (s *Server) createAccessToken(rq *request) (int, any, error) {
	in, err := s.installationByPath(rq)
	if err != nil {
		return 0, nil, err
	}
	tok := &token{kind: TokenInstallation, value: "ghs_" + randomString(36), user: s.bot, inst: in.id,
		expires: s.now().Add(s.opts.TokenTTL)}
	s.tokens[tok.value] = tok
	repos := make([]*github.Repository, 0, len(s.repoOrder))
	for _, r := range s.reposOf(in) {
		repos = append(repos, s.repository(r))
	}
	return http.StatusCreated, &struct {
		*github.InstallationToken
		RepositorySelection string `json:"repository_selection"`
	}{&github.InstallationToken{Token: github.String(tok.value), ExpiresAt: ghTime(tok.expires),
		Permissions: installationPermissions(), Repositories: repos}, in.selection}, nil
}
