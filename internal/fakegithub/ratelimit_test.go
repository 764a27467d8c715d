package fakegithub

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

// get is a raw GET with a token and optional If-None-Match.
func get(t *testing.T, s *Server, path, token, etag string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+token)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestConditionalRequestsAndPrimaryRateLimit(t *testing.T) {
	f := newFixture(t, Options{})
	f.s.SetBudget(5)
	const repoPath = "/repos/acme/gitops"
	tok := f.tok["alice"]
	expect := func(step string, resp *http.Response, status int, remaining string) {
		t.Helper()
		h := resp.Header
		if resp.StatusCode != status || h.Get("X-RateLimit-Remaining") != remaining || h.Get("X-RateLimit-Limit") != "5" ||
			h.Get("X-RateLimit-Resource") != "core" || h.Get("X-RateLimit-Used") == "" || h.Get("X-RateLimit-Reset") == "" {
			t.Fatalf("%s: %d, headers %v; want %d with %s remaining", step, resp.StatusCode, h, status, remaining)
		}
	}

	resp, body := get(t, f.s, repoPath, tok, "")
	expect("first GET", resp, 200, "4")
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || len(etag) < 10 || !strings.Contains(body, `"full_name":"acme/gitops"`) {
		t.Fatalf("ETag %q, body %s", etag, body)
	}
	if reset, _ := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); reset != f.clock.Now().Add(time.Hour).Unix() {
		t.Errorf("X-RateLimit-Reset %d, want now+1h", reset)
	}
	resp, body = get(t, f.s, repoPath, tok, etag)
	expect("revalidation", resp, http.StatusNotModified, "4")
	if body != "" || resp.Header.Get("ETag") != etag {
		t.Errorf("304 body %q ETag %q", body, resp.Header.Get("ETag"))
	}

	// Another token of the same person: a new ETag, the same budget.
	tok2 := f.s.AddUser("alice", PermWrite)
	resp, _ = get(t, f.s, repoPath, tok2, etag)
	expect("new token", resp, 200, "3")
	if resp.Header.Get("ETag") == etag {
		t.Error("the ETag did not change with the token")
	}
	for i := range 3 {
		resp, _ = get(t, f.s, repoPath, tok, "")
		expect("spend", resp, 200, strconv.Itoa(2-i))
	}
	resp, body = get(t, f.s, repoPath, tok, "")
	expect("exhausted", resp, http.StatusForbidden, "0")
	if !strings.Contains(body, "API rate limit exceeded for user ID") {
		t.Errorf("exhausted body %s", body)
	}
	// Others keep their own budget.
	resp, _ = get(t, f.s, repoPath, f.tok["bob"], "")
	expect("another user", resp, 200, "4")

	_, _, err := f.userClient(t, "alice").Repositories.Get(context.Background(), owner, name)
	var rl *github.RateLimitError
	if !errors.As(err, &rl) || rl.Rate.Remaining != 0 || rl.Rate.Limit != 5 {
		t.Errorf("go-github error %T %v, want a RateLimitError", err, err)
	}
	f.clock.Add(61 * time.Minute)
	resp, _ = get(t, f.s, repoPath, tok, "")
	expect("after reset", resp, 200, "4")
}

func TestInstallationRateLimit(t *testing.T) {
	f := newFixture(t, Options{InstallationID: 31})
	f.s.SetBudget(2)
	ctx := context.Background()
	for range 2 {
		if _, _, err := f.app.Repositories.Get(ctx, owner, name); err != nil {
			t.Fatal(err)
		}
	}
	// f.app now refuses locally (go-github saw Remaining: 0), so ask the
	// server through a fresh client: its token exchange spends the App's
	// JWT budget, not the installation's.
	_, _, err := appClient(t, f.s).Repositories.Get(ctx, owner, name)
	var rl *github.RateLimitError
	if !errors.As(err, &rl) || rl.Message != "API rate limit exceeded for installation ID 31." {
		t.Errorf("third call: %T %v", err, err)
	}
}

func TestSecondaryRateLimit(t *testing.T) {
	for _, code := range []int{http.StatusForbidden, http.StatusTooManyRequests} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			f := newFixture(t, Options{SecondaryLimitStatus: code})
			f.s.SecondaryRateLimit(2, 30*time.Second)
			for i := range 2 {
				resp, body := get(t, f.s, "/repos/acme/gitops", f.tok["alice"], "")
				if resp.StatusCode != code || resp.Header.Get("Retry-After") != "30" ||
					!strings.Contains(body, "You have exceeded a secondary rate limit") {
					t.Fatalf("request %d: %d Retry-After %q %s", i, resp.StatusCode, resp.Header.Get("Retry-After"), body)
				}
			}
			if resp, _ := get(t, f.s, "/repos/acme/gitops", f.tok["alice"], ""); resp.StatusCode != 200 {
				t.Errorf("third request: %d, want 200", resp.StatusCode)
			}
			f.s.SecondaryRateLimit(1, 7*time.Second)
			_, _, err := f.userClient(t, "alice").Repositories.Get(context.Background(), owner, name)
			var ab *github.AbuseRateLimitError
			if code == http.StatusForbidden && (!errors.As(err, &ab) || ab.GetRetryAfter() != 7*time.Second) {
				t.Errorf("go-github error %T %v, want an AbuseRateLimitError with RetryAfter 7s", err, err)
			}
			if code == http.StatusTooManyRequests && status(err) != http.StatusTooManyRequests {
				t.Errorf("go-github error %v, want 429", err)
			}
		})
	}
}
