package github

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestEndpoint(t *testing.T) {
	cases := map[string]string{
		"/repos/acme/gitops/pulls/7/merge":                              "/repos/{owner}/{repo}/pulls/{n}/merge",
		"/api/v3/repos/acme/gitops/pulls":                               "/api/v3/repos/{owner}/{repo}/pulls",
		"/repos/acme/gitops/git/ref/heads/canarybot/qwen/ab":            "/repos/{owner}/{repo}/git/ref/{ref}",
		"/repos/acme/gitops/git/refs/heads/main":                        "/repos/{owner}/{repo}/git/refs/{ref}",
		"/repos/acme/gitops/collaborators/ana/permission":               "/repos/{owner}/{repo}/collaborators/{user}/permission",
		"/repos/a/b/commits/" + strings.Repeat("a", 40) + "/check-runs": "/repos/{owner}/{repo}/commits/{sha}/check-runs",
		"/app/installations/42/access_tokens":                           "/app/installations/{n}/access_tokens",
	}
	for in, want := range cases {
		if got := Endpoint(in); got != want {
			t.Errorf("Endpoint(%q) = %q, want %q", in, got, want)
		}
	}
}

// etagServer answers GET /repos/acme/gitops/pulls with a body whose ETag
// depends on the token, as GitHub's does, and counts full answers.
type etagServer struct {
	mu   sync.Mutex
	body string
	full int
}

func (s *etagServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := sha256.Sum256([]byte(r.Header.Get("Authorization") + s.body))
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(4999-s.full))
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.full++
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, s.body)
}

func TestConditionalRequestsReuseTheCacheAndRekeyOnTokenRotation(t *testing.T) {
	srv := &etagServer{body: `[{"number":7,"title":"canary(qwen): step 1"}]`}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	tr := &Transport{Metrics: m, Cache: NewETagCache(16)}
	token := "t1"
	client := newRESTClient(t, ts.URL, &authTransport{token: func() string { return token }, base: tr})
	ctx := context.Background()
	list := func() string {
		t.Helper()
		prs, _, err := client.PullRequests.List(ctx, "acme", "gitops", nil)
		if err != nil {
			t.Fatalf("list pulls: %v", err)
		}
		return fmt.Sprint(len(prs), prs[0].GetTitle())
	}
	first := list()
	if second := list(); second != first {
		t.Fatalf("cached answer %q differs from %q", second, first)
	}
	if srv.full != 1 {
		t.Fatalf("server sent %d full answers, want 1 (the second GET should be a 304)", srv.full)
	}
	token = "t2" // rotated installation token: a new cache key
	list()
	if srv.full != 2 {
		t.Fatalf("after token rotation the server sent %d full answers, want 2", srv.full)
	}
	srv.mu.Lock()
	srv.body = `[{"number":8,"title":"changed"}]`
	srv.mu.Unlock()
	if got := list(); got != "1changed" {
		t.Fatalf("changed resource read as %q", got)
	}
	got := testutil.ToFloat64(m.calls.WithLabelValues("GET", "/repos/{owner}/{repo}/pulls", "304"))
	if got != 1 {
		t.Fatalf("counted %v 304s, want 1", got)
	}
}

type authTransport struct {
	token func() string
	base  http.RoundTripper
}

func (a *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "token "+a.token())
	return a.base.RoundTrip(r)
}

func newRESTClient(t *testing.T, base string, rt http.RoundTripper) *gh.Client {
	t.Helper()
	c, err := gh.NewClient(&http.Client{Transport: rt}).WithEnterpriseURLs(base+"/", base+"/")
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL.Path = "/"
	return c
}

func TestRateLimitsAreWaitedOutWhenShort(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		name      string
		headers   map[string]string
		status    int
		wantWait  time.Duration
		wantRetry bool
	}{
		{"secondary limit with Retry-After", map[string]string{"Retry-After": "3"}, 403, 3 * time.Second, true},
		{"429 with Retry-After", map[string]string{"Retry-After": "1"}, 429, time.Second, true},
		{"primary limit resets soon", map[string]string{"X-RateLimit-Remaining": "0",
			"X-RateLimit-Reset": strconv.FormatInt(now.Add(20*time.Second).Unix(), 10)}, 403, 21 * time.Second, true},
		{"primary limit resets in an hour: returned to the caller", map[string]string{"X-RateLimit-Remaining": "0",
			"X-RateLimit-Reset": strconv.FormatInt(now.Add(time.Hour).Unix(), 10)}, 403, 0, false},
		{"a plain 403 is not a rate limit", nil, 403, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls++
				body, _ := io.ReadAll(r.Body)
				if calls == 1 {
					for k, v := range tc.headers {
						w.Header().Set(k, v)
					}
					w.WriteHeader(tc.status)
					_, _ = io.WriteString(w, `{"message":"limited"}`)
					return
				}
				_, _ = w.Write(body) // echo: proves the body was replayed
			}))
			defer ts.Close()
			var waited time.Duration
			tr := &Transport{Now: func() time.Time { return now },
				Sleep: func(_ context.Context, d time.Duration) error { waited += d; return nil }}
			req, _ := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(`{"x":1}`))
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if tc.wantRetry != (calls == 2) || waited != tc.wantWait {
				t.Fatalf("calls=%d waited=%s, want retry=%v after %s", calls, waited, tc.wantRetry, tc.wantWait)
			}
			if tc.wantRetry && (resp.StatusCode != 200 || string(body) != `{"x":1}`) {
				t.Fatalf("retried answer %d %q, want the replayed body", resp.StatusCode, body)
			}
			if !tc.wantRetry && resp.StatusCode != tc.status {
				t.Fatalf("status %d, want GitHub's %d passed through", resp.StatusCode, tc.status)
			}
		})
	}
}
