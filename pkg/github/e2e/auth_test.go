package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/canarybot/canarybot/internal/fakegithub"
	"github.com/canarybot/canarybot/pkg/github"
)

func appAuth(s *fakegithub.Server) github.Auth {
	return github.Auth{APIURL: s.URL() + "/", AppID: s.AppID(), InstallationID: s.InstallationID(), PrivateKey: s.PrivateKeyPEM()}
}

// Installation tokens are renewed before they expire: with a 61 s token,
// ghinstallation's one-minute margin makes the next call fetch a new one.
func TestInstallationTokenIsRenewedBeforeItExpires(t *testing.T) {
	s := fakegithub.New(t, fakegithub.Options{TokenTTL: 61 * time.Second})
	s.CreateRepo("acme", "gitops", "main", t.TempDir())
	ctx := context.Background()
	sess, err := github.Connect(ctx, appAuth(s), &github.Transport{})
	if err != nil {
		t.Fatal(err)
	}
	if sess.Login != s.BotLogin() {
		t.Errorf("login %q, want the App's bot %q", sess.Login, s.BotLogin())
	}
	first, err := sess.GitToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, _, err := sess.REST.Repositories.Get(ctx, "acme", "gitops"); err != nil {
		t.Fatalf("API call with a renewed token: %v", err)
	}
	second, err := sess.GitToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first == second {
		t.Fatal("the installation token was not renewed within a minute of its expiry")
	}
	if n := s.CallCount("POST /app/installations/{id}/access_tokens"); n < 2 {
		t.Logf("calls: %+v", s.Calls())
		t.Fatalf("%d token requests, want at least 2", n)
	}
}

func TestInstallationsKeepOneSessionEach(t *testing.T) {
	s := fakegithub.New(t, fakegithub.Options{})
	ctx := context.Background()
	app, err := github.NewApp(ctx, appAuth(s), &github.Transport{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Session(ctx, s.InstallationID())
	if err != nil {
		t.Fatal(err)
	}
	b, err := app.Session(ctx, s.InstallationID())
	if err != nil || a != b || a.Installation() != s.InstallationID() {
		t.Fatalf("second lookup: %p vs %p, %v; want the same session", a, b, err)
	}
	if _, err := app.Session(ctx, 999); err == nil || !strings.Contains(err.Error(), "installation 999") {
		t.Fatalf("unknown installation: %v", err)
	}
}

// A secondary rate limit is waited out (Retry-After) and counted.
func TestSecondaryRateLimitIsWaitedOut(t *testing.T) {
	s := fakegithub.New(t, fakegithub.Options{})
	s.CreateRepo("acme", "gitops", "main", t.TempDir())
	reg := prometheus.NewRegistry()
	m, err := github.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sess, err := github.Connect(ctx, appAuth(s), &github.Transport{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	s.SecondaryRateLimit(1, time.Second)
	if _, _, err := sess.REST.PullRequests.List(ctx, "acme", "gitops", &gh.PullRequestListOptions{State: "open"}); err != nil {
		t.Fatalf("list after a secondary limit: %v", err)
	}
	if got := testutil.ToFloat64(m.Waits()); got != 1 {
		t.Fatalf("rate-limit waits = %v, want 1", got)
	}
}
