package fakegithub

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// TokenKind is how a request authenticated.
type TokenKind string

// Token kinds.
const (
	TokenNone         TokenKind = "none"         // no or bad credentials
	TokenApp          TokenKind = "app"          // the App's JWT
	TokenInstallation TokenKind = "installation" // an installation token (ghs_)
	TokenUser         TokenKind = "user"         // a person's token (ghp_)
)

// Permission levels of people on the server's repositories, as
// GET /repos/{owner}/{repo}/collaborators/{user}/permission reports them.
const (
	PermAdmin = "admin"
	PermWrite = "write"
	PermRead  = "read"
	PermNone  = "none"
)

// account is a user or the App's bot user.
type account struct {
	id    int64
	login string
	typ   string // "User" or "Bot"
	perm  string
}

// token is an issued credential.
type token struct {
	kind    TokenKind
	value   string
	user    *account
	inst    int64     // the installation of an installation token
	expires time.Time // zero: never
}

// identity is the authenticated caller of one request.
type identity struct {
	kind  TokenKind
	token string
	user  *account // the bot for installation tokens; nil for the App
	inst  int64    // the installation of an installation token
}

var errBadCredentials = &apiError{Status: http.StatusUnauthorized, Message: "Bad credentials"}

func (s *Server) initKey() error {
	if s.opts.AppPublicKey != nil {
		s.key = s.opts.AppPublicKey
		return nil
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate the App's key: %w", err)
	}
	s.key = &k.PublicKey
	s.keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return nil
}

// PrivateKeyPEM is the App's generated private key (PKCS #1 PEM), as
// GitHub lets you download it; nil when Options.AppPublicKey was given.
func (s *Server) PrivateKeyPEM() []byte { return append([]byte(nil), s.keyPEM...) }

// AppID is the App's ID.
func (s *Server) AppID() int64 { return s.opts.AppID }

// InstallationID is the App's default installation, which covers every
// repository that no installation made by AddInstallation covers.
func (s *Server) InstallationID() int64 { return s.opts.InstallationID }

// BotLogin is the App's user login, "<slug>[bot]".
func (s *Server) BotLogin() string { return s.bot.login }

// AddUser adds a person with perm (PermAdmin, PermWrite, PermRead or
// PermNone) on every repository and returns a personal token for them.
// Adding a known login changes its permission and issues another token.
func (s *Server) AddUser(login, perm string) string {
	s.t.Helper()
	switch perm {
	case PermAdmin, PermWrite, PermRead, PermNone:
	default:
		s.t.Fatalf("fakegithub: AddUser(%q): permission %q is not admin, write, read or none", login, perm)
	}
	if login == "" || strings.ContainsAny(login, " /:") {
		s.t.Fatalf("fakegithub: AddUser: bad login %q", login)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[login]
	if u == nil {
		u = s.newAccount(login, "User", perm)
	}
	u.typ, u.perm = "User", perm
	tok := &token{kind: TokenUser, value: "ghp_" + randomString(36), user: u}
	s.tokens[tok.value] = tok
	return tok.value
}

func (s *Server) newAccount(login, typ, perm string) *account {
	a := &account{id: s.id(), login: login, typ: typ, perm: perm}
	s.users[login] = a
	return a
}

// permission is who's permission on r. An installation token has none
// on the repositories its installation does not cover.
func (s *Server) permission(who *identity, r *repo) string {
	if who.user == nil {
		return PermNone
	}
	if who.kind == TokenInstallation && r != nil {
		if in := s.covering(r); in == nil || in.id != who.inst {
			return PermNone
		}
	}
	return who.user.perm
}

// need refuses the request unless its caller has at least perm.
func (rq *request) need(perm string) error {
	rank := map[string]int{PermNone: 0, PermRead: 1, PermWrite: 2, PermAdmin: 3}
	if rank[rq.s.permission(rq.who, rq.repo)] >= rank[perm] {
		return nil
	}
	if rq.who.kind == TokenInstallation {
		return forbidden("Resource not accessible by integration")
	}
	return forbidden("Resource not accessible by personal access token")
}

// authenticate checks the Authorization header for the route's mode.
func (s *Server) authenticate(r *http.Request, mode authMode) (*identity, error) {
	h := r.Header.Get("Authorization")
	scheme, cred, ok := strings.Cut(h, " ")
	if h == "" || !ok {
		return nil, &apiError{Status: http.StatusUnauthorized, Message: "Requires authentication"}
	}
	if mode == authJWT {
		if !strings.EqualFold(scheme, "Bearer") {
			return nil, &apiError{Status: http.StatusUnauthorized, Message: "A JSON web token could not be decoded"}
		}
		if err := s.verifyJWT(cred); err != nil {
			return nil, err
		}
		return &identity{kind: TokenApp, token: cred}, nil
	}
	if !strings.EqualFold(scheme, "token") && !strings.EqualFold(scheme, "Bearer") {
		return nil, errBadCredentials
	}
	tok := s.tokens[cred]
	if tok == nil || (!tok.expires.IsZero() && !s.now().Before(tok.expires)) {
		return nil, errBadCredentials
	}
	return &identity{kind: tok.kind, token: cred, user: tok.user, inst: tok.inst}, nil
}

// verifyJWT checks an App JWT as GitHub does: RS256 signed by the App's
// key, iss the App ID, iat not in the future, exp in the future and at
// most ten minutes ahead (each with a minute's leeway for clock drift).
func (s *Server) verifyJWT(jwt string) error {
	undecodable := &apiError{Status: http.StatusUnauthorized, Message: "A JSON web token could not be decoded"}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return undecodable
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Iat json.Number     `json:"iat"`
		Exp json.Number     `json:"exp"`
	}
	if decodeSegment(parts[0], &header) != nil || decodeSegment(parts[1], &claims) != nil || header.Alg != "RS256" {
		return undecodable
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return undecodable
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(s.key, crypto.SHA256, digest[:], sig) != nil {
		return undecodable
	}
	iss := strings.Trim(string(claims.Iss), `"`)
	if iss != strconv.FormatInt(s.opts.AppID, 10) {
		return &apiError{Status: http.StatusUnauthorized, Message: "Integration not found"}
	}
	iat, err1 := claims.Iat.Int64()
	exp, err2 := claims.Exp.Int64()
	now := s.now().Unix()
	switch {
	case err1 != nil || iat > now+60:
		return &apiError{Status: http.StatusUnauthorized,
			Message: "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued."}
	case err2 != nil || exp <= now-60:
		return &apiError{Status: http.StatusUnauthorized,
			Message: "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires."}
	case exp > now+600+60:
		return &apiError{Status: http.StatusUnauthorized, Message: "'Expiration time' claim ('exp') is too far in the future"}
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("decode JWT segment: %w", err)
	}
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("parse JWT segment: %w", err)
	}
	return nil
}

// ExpireTokens makes every installation token issued so far expire now,
// as if their hour were up.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.kind == TokenInstallation {
			t.expires = s.now()
		}
	}
}

func (s *Server) authRoutes() {
	s.api("GET /app", authJWT, func(*request) (int, any, error) { return http.StatusOK, s.app(), nil })
	s.api("GET /user", authToken, func(rq *request) (int, any, error) {
		if rq.who.kind != TokenUser {
			return 0, nil, forbidden("Resource not accessible by integration")
		}
		return http.StatusOK, s.user(rq.who.user), nil
	})
	s.api("GET /users/{login}", authToken, func(rq *request) (int, any, error) {
		u := s.users[rq.PathValue("login")]
		if u == nil {
			return 0, nil, errNotFound
		}
		return http.StatusOK, s.user(u), nil
	})
}

func installationPermissions() *github.InstallationPermissions {
	return &github.InstallationPermissions{
		Contents: github.String("write"), PullRequests: github.String("write"), Checks: github.String("write"),
		Issues: github.String("write"), Metadata: github.String("read"), Statuses: github.String("write"),
		Packages: github.String("read"),
	}
}

func (s *Server) app() *github.App {
	return &github.App{
		ID: github.Int64(s.opts.AppID), Slug: github.String(s.opts.AppSlug), Name: github.String(s.opts.AppSlug),
		NodeID: github.String(fmt.Sprintf("A_%d", s.opts.AppID)), HTMLURL: github.String(s.apiURL("/apps/" + s.opts.AppSlug)),
		Permissions: installationPermissions(),
		Events:      []string{"check_run", "issue_comment", "pull_request", "pull_request_review", "push", "registry_package"},
	}
}

// user is a's public profile.
func (s *Server) user(a *account) *github.User {
	if a == nil {
		return nil
	}
	return &github.User{
		Login: github.String(a.login), ID: github.Int64(a.id), NodeID: github.String(fmt.Sprintf("U_%d", a.id)),
		Type: github.String(a.typ), SiteAdmin: github.Bool(false),
		URL:     github.String(s.apiURL("/users/" + a.login)),
		HTMLURL: github.String(s.apiURL("/" + a.login)),
	}
}

// owner is the account owning repositories under login; organisations
// are created on first use.
func (s *Server) owner(login string) *github.User {
	a := s.users[login]
	if a == nil {
		a = s.newAccount(login, "Organization", PermNone)
	}
	return s.user(a)
}

func (s *Server) collaboratorPermission(rq *request) (int, any, error) {
	u := s.users[rq.PathValue("user")]
	if u == nil || u.typ == "Organization" {
		return 0, nil, errNotFound
	}
	return http.StatusOK, &github.RepositoryPermissionLevel{Permission: github.String(u.perm), User: s.user(u)}, nil
}

func randomString(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
