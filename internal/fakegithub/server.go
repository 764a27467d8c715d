// Package fakegithub is a faithful fake of GitHub's REST API for tests,
// served by httptest and backed by real bare git repositories: creating
// blobs, trees, commits and refs writes git objects, and merging a pull
// request really moves the base branch. Git itself is served over smart
// HTTP by the real `git http-backend`.
//
// Every response is one of go-github v60's own types, marshalled, so the
// JSON shapes are GitHub's by construction. Authentication follows GitHub:
// an App signs an RS256 JWT to get short-lived installation tokens; people
// use personal tokens. The fake also enforces primary and secondary rate
// limits with GitHub's headers, answers conditional GETs with 304, applies
// branch protection to merges, and delivers signed webhooks
// asynchronously to a receiver, recording every delivery: pull_request,
// pull_request_review, issue_comment, check_run, registry_package,
// installation events, and push whenever a branch moves.
//
// Tests drive it with a real client; Calls, PR, RepoPath and Deliveries
// let them look at what happened:
//
//	s := fakegithub.New(t, fakegithub.Options{WebhookURL: bot.URL + "/webhooks/github", WebhookSecret: "s"})
//	s.CreateRepo("acme", "gitops", "main", "testdata/seed")
//	s.Protect("acme", "gitops", "main", 1, "canary/gates")
//	s.AddUser("alice", fakegithub.PermWrite) // returns her personal token
//	// The App: ghinstallation with s.AppID(), s.InstallationID() and
//	// s.PrivateKeyPEM(), BaseURL s.URL(); go-github's BaseURL s.URL()+"/".
//	// More installations: s.AddInstallation("other-org") and its ID.
//	// Git: s.CloneURL("acme", "gitops") with user x-access-token and an
//	// installation token as the password. A person pushes as themselves
//	// with the token AddUser returned as the password (any user name;
//	// their login reads best), e.g. https://alice:<token>@host/acme/gitops.git.
//	// Every branch a git push, a merge or a git/refs call moves emits push.
//	s.Review("acme", "gitops", 1, "alice", "APPROVE", "ship it") // emits pull_request_review
//	s.WaitDeliveries(ctx)
package fakegithub

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

// Options configure a Server. Zero values take the defaults noted.
type Options struct {
	// Clock is the server's time: token expiry, JWT checks, rate-limit
	// windows and timestamps. time.Now when nil.
	Clock func() time.Time
	// Logger receives the server's own diagnostics; discarded when nil.
	Logger *slog.Logger
	// AppID is the GitHub App's ID (1) and AppSlug its slug ("canarybot");
	// the App acts as the user "<slug>[bot]".
	AppID   int64
	AppSlug string
	// AppPublicKey verifies the App's JWTs. When nil, New generates a key
	// pair and PrivateKeyPEM returns its private half.
	AppPublicKey *rsa.PublicKey
	// InstallationID is the App's default installation (1); it covers
	// every repository that no installation made by AddInstallation
	// covers, so without those it covers every repository of the server.
	InstallationID int64
	// TokenTTL is the lifetime of installation tokens (1h, as GitHub).
	TokenTTL time.Duration
	// RateLimit is each identity's hourly request budget (15000).
	RateLimit int
	// SecondaryLimitStatus is the status of secondary-rate-limited
	// answers: 403 (GitHub's usual) or 429.
	SecondaryLimitStatus int
	// WebhookURL receives the App's webhook deliveries; see SetWebhookURL.
	WebhookURL string
	// WebhookSecret signs deliveries (X-Hub-Signature-256).
	WebhookSecret string
	// HookID is the X-GitHub-Hook-ID of deliveries (424242).
	HookID int64
}

// Call is one request the server answered.
type Call struct {
	Method string
	// Route is the route pattern, e.g. "POST /repos/{owner}/{repo}/pulls";
	// git smart-HTTP requests are "GIT /{owner}/{repo}.git/<service>".
	Route  string
	Status int
	Token  TokenKind
}

// Server is a fake GitHub. All its methods are safe for concurrent use.
type Server struct {
	t      testing.TB
	opts   Options
	now    func() time.Time
	log    *slog.Logger
	http   *httptest.Server
	root   string // GIT_PROJECT_ROOT: <root>/<owner>/<name>.git
	git    *gitCLI
	key    *rsa.PublicKey
	keyPEM []byte
	mux    *http.ServeMux
	cgi    *cgi.Handler
	hooks  *webhooks

	mu        sync.Mutex
	nextID    int64
	repos     map[string]*repo // by lower-case "owner/name"
	repoOrder []*repo
	users     map[string]*account // by login
	bot       *account
	tokens    map[string]*token
	calls     []Call
	limits    *rateLimiter
	// installs are the App's live installations by ID; nextInstall is
	// the last ID given out.
	installs    map[int64]*installation
	nextInstall int64
}

// New starts a fake GitHub for the test; it stops when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := newServer(t, opts)
	if err != nil {
		t.Fatalf("fakegithub: %v", err)
	}
	return s
}

func newServer(t testing.TB, opts Options) (*Server, error) {
	opts = withDefaults(opts)
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("find the git CLI: %w", err)
	}
	dir := t.TempDir()
	s := &Server{
		t: t, opts: opts, now: opts.Clock, log: opts.Logger,
		root:   filepath.Join(dir, "repos"),
		git:    &gitCLI{bin: gitBin, home: filepath.Join(dir, "home"), tmp: filepath.Join(dir, "tmp")},
		repos:  map[string]*repo{},
		users:  map[string]*account{},
		tokens: map[string]*token{},
		limits: newRateLimiter(opts),
		mux:    http.NewServeMux(),
	}
	if err := s.git.init(s.root); err != nil {
		return nil, err
	}
	if err := s.initKey(); err != nil {
		return nil, err
	}
	s.bot = s.newAccount(opts.AppSlug+"[bot]", "Bot", PermWrite)
	s.initInstallations()
	s.cgi = &cgi.Handler{Path: gitBin, Args: []string{"http-backend"}, Env: append(s.git.env(),
		"GIT_PROJECT_ROOT="+s.root, "GIT_HTTP_EXPORT_ALL=1")}
	s.routes()
	s.http = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.hooks = newWebhooks(opts, s.now, s.log)
	t.Cleanup(func() {
		s.hooks.close()
		s.http.Close()
	})
	return s, nil
}

func withDefaults(o Options) Options {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.AppID == 0 {
		o.AppID = 1
	}
	if o.AppSlug == "" {
		o.AppSlug = "canarybot"
	}
	if o.InstallationID == 0 {
		o.InstallationID = 1
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = time.Hour
	}
	if o.RateLimit == 0 {
		o.RateLimit = 15000
	}
	if o.SecondaryLimitStatus == 0 {
		o.SecondaryLimitStatus = http.StatusForbidden
	}
	if o.HookID == 0 {
		o.HookID = 424242
	}
	return o
}

// URL is the server's root: both go-github's BaseURL (with a trailing
// slash) and the base of clone URLs, URL()/owner/repo.git.
func (s *Server) URL() string { return s.http.URL }

// CloneURL is the smart-HTTP URL of a repository.
func (s *Server) CloneURL(owner, name string) string {
	return s.http.URL + "/" + owner + "/" + name + ".git"
}

// Calls returns every API and git request answered so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallCount counts the answered calls of one route pattern.
func (s *Server) CallCount(route string) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Route == route {
			n++
		}
	}
	return n
}

func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

// serveHTTP sends git smart-HTTP requests (/{owner}/{name}.git/...) to
// git http-backend and everything else to the API routes. A leading
// /api/v3 (GitHub Enterprise's prefix) is accepted and ignored.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if p, ok := strings.CutPrefix(r.URL.Path, "/api/v3"); ok && (p == "" || p[0] == '/') {
		r.URL.Path = p
		r.URL.RawPath = ""
	}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	if len(parts) == 3 && strings.HasSuffix(parts[1], ".git") {
		s.serveGit(w, r, parts[0], strings.TrimSuffix(parts[1], ".git"), parts[2])
		return
	}
	s.mux.ServeHTTP(w, r)
}

// handlerFunc serves one API route. It returns the status and the value
// to marshal (nil for no body), or an error: an *apiError is answered as
// GitHub would, anything else is a 500.
type handlerFunc func(rq *request) (int, any, error)

// authMode is what a route accepts as credentials.
type authMode int

const (
	authToken authMode = iota // an installation or personal token
	authJWT                   // the App's JWT
)

// request is one API request being served, with its caller and, for
// /repos/{owner}/{repo}/... routes, its repository.
type request struct {
	*http.Request
	s    *Server
	who  *identity
	repo *repo
	link string // the Link header of a paginated answer
}

// api registers an API route. Every route authenticates, counts against
// the caller's rate limit, records a Call and answers conditional GETs;
// routes under /repos/{owner}/{repo} also resolve the repository.
func (s *Server) api(pattern string, mode authMode, h handlerFunc) {
	s.apiAs(pattern, func(*http.Request) string { return pattern }, mode, h)
}

// apiAs registers h on pattern but records each call under route(r): for
// GitHub routes that Go's ServeMux cannot tell apart by pattern alone.
func (s *Server) apiAs(pattern string, route func(*http.Request) string, mode authMode, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rq := &request{Request: r, s: s}
		status, body, hdr, kind := s.serve(rq, mode, h)
		s.calls = append(s.calls, Call{Method: r.Method, Route: route(r), Status: status, Token: kind})
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		if len(body) > 0 && status != http.StatusNotModified {
			_, _ = w.Write(body)
		}
	})
}

// serve runs the whole pipeline of one API request and returns the
// answer to write.
func (s *Server) serve(rq *request, mode authMode, h handlerFunc) (int, []byte, http.Header, TokenKind) {
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Set("X-GitHub-Media-Type", "github.v3; format=json")
	hdr.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	hdr.Set("X-GitHub-Request-Id", fmt.Sprintf("FAKE:%d", s.id()))
	who, err := s.authenticate(rq.Request, mode)
	if err != nil {
		s.limits.headers(hdr, anonymousBucket, s.now())
		return errorAnswer(err, hdr, TokenNone)
	}
	rq.who = who
	b := bucketOf(who)
	if err := s.limits.admit(b, s.now()); err != nil {
		s.limits.headers(hdr, b, s.now())
		return errorAnswer(err, hdr, who.kind)
	}
	status, body, err := s.run(rq, h)
	if rq.link != "" {
		hdr.Set("Link", rq.link)
	}
	if err != nil {
		s.limits.spend(b, s.now())
		s.limits.headers(hdr, b, s.now())
		return errorAnswer(err, hdr, who.kind)
	}
	var raw []byte
	if body != nil {
		if raw, err = json.Marshal(body); err != nil {
			return errorAnswer(fmt.Errorf("marshal %T: %w", body, err), hdr, who.kind)
		}
	}
	if rq.Method == http.MethodGet && status == http.StatusOK {
		tag := etag(who.token, raw)
		hdr.Set("ETag", tag)
		hdr.Set("Cache-Control", "private, max-age=60, s-maxage=60")
		hdr.Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
		if etagMatches(rq.Header.Get("If-None-Match"), tag) {
			s.limits.headers(hdr, b, s.now())
			return http.StatusNotModified, nil, hdr, who.kind
		}
	}
	s.limits.spend(b, s.now())
	s.limits.headers(hdr, b, s.now())
	return status, raw, hdr, who.kind
}

// run resolves the route's repository, if any, and calls the handler.
func (s *Server) run(rq *request, h handlerFunc) (int, any, error) {
	if owner := rq.PathValue("owner"); owner != "" && strings.HasPrefix(rq.Pattern, rq.Method+" /repos/") {
		r := s.repos[repoKey(owner, rq.PathValue("repo"))]
		// The App's JWT sees every repository; an installation token only
		// those of its installation (see permission).
		if r == nil || (rq.who.kind != TokenApp && s.permission(rq.who, r) == PermNone) {
			return 0, nil, errNotFound
		}
		rq.repo = r
	}
	return h(rq)
}

// errorAnswer renders err as GitHub's error JSON.
func errorAnswer(err error, hdr http.Header, kind TokenKind) (int, []byte, http.Header, TokenKind) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{Status: http.StatusInternalServerError, Message: err.Error()}
	}
	for k, v := range ae.Header {
		hdr[k] = v
	}
	raw, _ := json.Marshal(ae.body())
	return ae.Status, raw, hdr, kind
}

// decode reads the request's JSON body into v; a bad body is GitHub's
// 400 "Problems parsing JSON".
func (rq *request) decode(v any) error {
	if err := json.NewDecoder(rq.Body).Decode(v); err != nil {
		return &apiError{Status: http.StatusBadRequest, Message: "Problems parsing JSON",
			Cause: fmt.Errorf("decode %s body: %w", rq.Pattern, err)}
	}
	return nil
}

// apiURL is the API URL of a path under the server root.
func (s *Server) apiURL(path string) string { return s.http.URL + path }

// ghTime is t as go-github's Timestamp, or nil for the zero time.
func ghTime(t time.Time) *github.Timestamp {
	if t.IsZero() {
		return nil
	}
	return &github.Timestamp{Time: t.UTC().Truncate(time.Second)}
}

// routes registers every API route.
func (s *Server) routes() {
	s.authRoutes()
	s.installationRoutes()
	s.repoRoutes()
	s.refRoutes()
	s.objectRoutes()
	s.pullRoutes()
	s.issueRoutes()
	s.checkRoutes()
}
