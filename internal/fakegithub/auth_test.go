package fakegithub

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

func TestAppTokenExchangeAndExpiry(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{AppID: 77, InstallationID: 99})
	const exchange = "POST /app/installations/{id}/access_tokens"

	app, _, err := f.app.Apps.Get(ctx, "")
	if err == nil {
		t.Errorf("GET /app with an installation token answered %v; it needs the App's JWT", app.GetSlug())
	}
	for range 3 {
		if _, _, err := f.app.Repositories.Get(ctx, owner, name); err != nil {
			t.Fatalf("get repo as the installation: %v", err)
		}
	}
	if n := f.s.CallCount(exchange); n != 1 {
		t.Errorf("%d token exchanges for 3 calls within the token's hour, want 1", n)
	}
	for _, c := range f.s.Calls() {
		if c.Route == "GET /repos/{owner}/{repo}" && c.Token != TokenInstallation {
			t.Errorf("repo call authenticated as %q", c.Token)
		}
	}

	// The server's clock passes the token's expiry; ghinstallation, on
	// the real clock, still holds it, and GitHub answers 401.
	f.clock.Add(61 * time.Minute)
	_, _, err = f.app.Repositories.Get(ctx, owner, name)
	if status(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "Bad credentials") {
		t.Errorf("call with an expired token: %v, want 401 Bad credentials", err)
	}

	// With a TTL under ghinstallation's one-minute margin it refreshes
	// before every call.
	g := newFixture(t, Options{TokenTTL: 30 * time.Second})
	for range 3 {
		if _, _, err := g.app.Repositories.Get(ctx, owner, name); err != nil {
			t.Fatalf("get repo: %v", err)
		}
	}
	if n := g.s.CallCount(exchange); n != 3 {
		t.Errorf("%d token exchanges with a 30s TTL, want one per call (3)", n)
	}
	tok, err := appInstallationToken(ctx, g.app)
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, g.s, "/repos/acme/gitops", tok, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("fresh token: %d", resp.StatusCode)
	}
	g.s.ExpireTokens()
	if resp, _ := get(t, g.s, "/repos/acme/gitops", tok, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after ExpireTokens: %d, want 401", resp.StatusCode)
	}
}

func TestAppJWTIsVerified(t *testing.T) {
	f := newFixture(t, Options{AppID: 5, InstallationID: 8})
	block, _ := pem.Decode(f.s.PrivateKeyPEM())
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now().Unix()
	good := map[string]any{"iss": "5", "iat": now - 30, "exp": now + 540}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range good {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	tests := []struct {
		name, auth, path string
		want             int
		message          string
	}{
		{"valid", "Bearer " + signJWT(t, key, good), "/app/installations/8/access_tokens", 201, ""},
		{"numeric iss", "Bearer " + signJWT(t, key, with("iss", 5)), "/app/installations/8/access_tokens", 201, ""},
		{"unknown installation", "Bearer " + signJWT(t, key, good), "/app/installations/9/access_tokens", 404, "Not Found"},
		{"other key", "Bearer " + signJWT(t, other, good), "/app/installations/8/access_tokens", 401, "could not be decoded"},
		{"other app", "Bearer " + signJWT(t, key, with("iss", "6")), "/app/installations/8/access_tokens", 401, "Integration not found"},
		{"expired", "Bearer " + signJWT(t, key, with("exp", now-120)), "/app/installations/8/access_tokens", 401, "'exp'"},
		{"exp too far", "Bearer " + signJWT(t, key, with("exp", now+3600)), "/app/installations/8/access_tokens", 401, "too far in the future"},
		{"issued in the future", "Bearer " + signJWT(t, key, with("iat", now+600)), "/app/installations/8/access_tokens", 401, "'iat'"},
		{"not a JWT", "Bearer abc.def", "/app/installations/8/access_tokens", 401, "could not be decoded"},
		{"no credentials", "", "/app/installations/8/access_tokens", 401, "Requires authentication"},
		{"personal token on an App route", "token " + f.tok["alice"], "/app/installations/8/access_tokens", 401, "could not be decoded"},
		{"JWT on a repo route", "Bearer " + signJWT(t, key, good), "/repos/acme/gitops", 401, "Bad credentials"},
		{"unknown token", "token ghs_nope", "/repos/acme/gitops", 401, "Bad credentials"},
		{"no token", "", "/repos/acme/gitops", 401, "Requires authentication"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, f.s.URL()+tc.path, nil)
			if strings.HasPrefix(tc.path, "/repos") {
				req, err = http.NewRequest(http.MethodGet, f.s.URL()+tc.path, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want || !strings.Contains(string(body), tc.message) {
				t.Fatalf("%s: %d %s, want %d with %q", tc.path, resp.StatusCode, body, tc.want, tc.message)
			}
			if tc.want != 201 {
				return
			}
			var tok github.InstallationToken
			if err := json.Unmarshal(body, &tok); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tok.GetToken(), "ghs_") || !tok.GetExpiresAt().Time.Equal(f.clock.Now().Add(time.Hour).Truncate(time.Second)) {
				t.Errorf("token %q expires %v, want ghs_… at now+1h", tok.GetToken(), tok.GetExpiresAt())
			}
		})
	}
}

func TestAppAndUserEndpoints(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{AppID: 12, AppSlug: "canary"})
	block, _ := pem.Decode(f.s.PrivateKeyPEM())
	key, _ := x509.ParsePKCS1PrivateKey(block.Bytes)
	now := f.clock.Now().Unix()
	jwt := signJWT(t, key, map[string]any{"iss": "12", "iat": now, "exp": now + 60})
	appOnly := withBase(t, f.s, github.NewClient(nil).WithAuthToken(jwt))
	app, _, err := appOnly.Apps.Get(ctx, "")
	if err != nil || app.GetID() != 12 || app.GetSlug() != "canary" {
		t.Errorf("GET /app = %+v, %v", app, err)
	}
	if inst, _, err := appOnly.Apps.FindRepositoryInstallation(ctx, owner, name); err != nil || inst.GetID() != f.s.InstallationID() {
		t.Errorf("GET /repos/acme/gitops/installation = %v, %v", inst, err)
	}
	insts, _, err := appOnly.Apps.ListInstallations(ctx, nil)
	if err != nil || len(insts) != 1 || insts[0].GetID() != f.s.InstallationID() {
		t.Errorf("GET /app/installations = %v, %v", insts, err)
	}

	me, _, err := f.userClient(t, "alice").Users.Get(ctx, "")
	if err != nil || me.GetLogin() != "alice" || me.GetType() != "User" {
		t.Errorf("GET /user as alice = %v, %v", me, err)
	}
	if _, _, err := f.app.Users.Get(ctx, ""); status(err) != http.StatusForbidden {
		t.Errorf("GET /user as the installation: %v, want 403", err)
	}
	for login, want := range map[string]string{"alice": "write", "bob": "admin", "rita": "read", "canary[bot]": "write"} {
		lvl, _, err := f.app.Repositories.GetPermissionLevel(ctx, owner, name, login)
		if err != nil || lvl.GetPermission() != want || lvl.GetUser().GetLogin() != login {
			t.Errorf("permission of %s = %v, %v; want %s", login, lvl, err, want)
		}
	}
	if _, _, err := f.app.Repositories.GetPermissionLevel(ctx, owner, name, "nobody"); status(err) != http.StatusNotFound {
		t.Errorf("permission of an unknown user: %v, want 404", err)
	}
	nobody := f.s.AddUser("nobody", PermNone)
	c := withBase(t, f.s, github.NewClient(nil).WithAuthToken(nobody))
	if _, _, err := c.Repositories.Get(ctx, owner, name); status(err) != http.StatusNotFound {
		t.Errorf("repo seen by a user without access: %v, want 404 (private)", err)
	}
	if _, _, err := f.app.Repositories.Get(ctx, owner, "missing"); status(err) != http.StatusNotFound {
		t.Errorf("unknown repo: %v, want 404", err)
	}
	repo, _, err := f.userClient(t, "rita").Repositories.Get(ctx, owner, name)
	if err != nil || repo.GetDefaultBranch() != "main" || repo.GetPermissions()["push"] {
		t.Errorf("repo as a reader = %v, %v; want default branch main and no push", repo, err)
	}
	if got := f.s.CallCount("GET /user"); got != 2 {
		t.Errorf("CallCount(GET /user) = %d, want 2", got)
	}
}
