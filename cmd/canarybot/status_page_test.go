package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/statuspage"
)

// get fetches url and returns its status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// pagePhases reads every rollout's phase, by repository and plan, from
// the status page's JSON API at base.
func pagePhases(t *testing.T, base string) map[string]map[string]string {
	t.Helper()
	code, body := get(t, base+"/api/v1/rollouts")
	var f statuspage.Fleet
	if err := json.Unmarshal([]byte(body), &f); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/v1/rollouts: %d %v\n%s", code, err, body)
	}
	got := map[string]map[string]string{}
	for _, r := range f.Repos {
		got[r.Repo] = map[string]string{}
		for _, ro := range r.Rollouts {
			got[r.Repo][ro.Plan] = ro.Phase
		}
	}
	return got
}

// phasesAre reports whether got has every want[repo][plan] phase.
func phasesAre(got, want map[string]map[string]string) bool {
	for repo, plans := range want {
		for plan, phase := range plans {
			if got[repo][plan] != phase {
				return false
			}
		}
	}
	return true
}

// checkStatusPage reads the status page at base: the JSON API lists every
// want[repo] plan in its phase, and the HTML pages answer.
func checkStatusPage(t *testing.T, base string, want map[string]map[string]string) {
	t.Helper()
	if got := pagePhases(t, base); !phasesAre(got, want) {
		t.Errorf("status page phases: %v, want %v", got, want)
	}
	for repo, plans := range want {
		for plan := range plans {
			q := "?repo=" + repo
			if len(want) == 1 {
				q = ""
			}
			if code, body := get(t, base+"/rollouts/"+plan+q); code != http.StatusOK || !strings.Contains(body, "<h1>"+plan) {
				t.Errorf("GET /rollouts/%s%s: %d\n%s", plan, q, code, tail(body, 20))
			}
		}
	}
	if code, body := get(t, base+"/"); code != http.StatusOK || !strings.Contains(body, "<title>canarybot rollouts</title>") {
		t.Errorf("GET /: %d\n%s", code, tail(body, 20))
	}
}

// status --serve serves the page of any repository, read over the
// network with a token that never shows.
func TestStatusServe(t *testing.T) {
	bare := retryRemote(t, true)
	repo := strings.Replace(serveGit(t, filepath.Dir(bare), "SECRET"), "http://", "http://SECRET@", 1) + "/gitops.git"
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "status", "--repo", repo, "--serve", "127.0.0.1:0", "--fetch-interval", "1s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("status --serve printed no address: %v\nstderr: %s", err, stderr.String())
	}
	base := strings.TrimSuffix(line[strings.Index(line, "http://127.0.0.1:"):], "/\n")
	if strings.Contains(line, "SECRET") {
		t.Errorf("status --serve printed the token: %q", line)
	}
	name := strings.Replace(repo, "SECRET", "xxxxx", 1)
	checkStatusPage(t, base, map[string]map[string]string{name: {"fraud-detector": "Reverted"}})
	for _, path := range []string{"/", "/api/v1/rollouts", "/rollouts/fraud-detector", "/api/v1/rollouts/fraud-detector"} {
		if _, body := get(t, base+path); strings.Contains(body, "SECRET") {
			t.Errorf("GET %s shows the token:\n%s", path, body)
		}
	}
	if code, body := get(t, base+"/rollouts/nope"); code != http.StatusNotFound || !strings.Contains(body, "no plan or rollout &#34;nope&#34;") {
		t.Errorf("GET /rollouts/nope: %d\n%s", code, tail(body, 10))
	}
	if strings.Contains(stderr.String(), "SECRET") {
		t.Errorf("status --serve logged the token:\n%s", stderr.String())
	}
}

func TestStatusPageLinks(t *testing.T) {
	for remote, want := range map[string]string{
		"https://x-access-token:SECRET@github.com/acme/gitops.git": "https://github.com/acme/gitops",
		"https://github.com/acme/gitops":                           "https://github.com/acme/gitops",
		"https://gitlab.com/acme/gitops.git":                       "",
		"file:///srv/gitops.git":                                   "",
		"https://github.com/acme":                                  "",
	} {
		if got := remoteWeb(remote); got != want {
			t.Errorf("remoteWeb(%q) = %q, want %q", remote, got, want)
		}
	}
	if got := githubWeb("https://api.github.com/", "acme/gitops"); got != "https://github.com/acme/gitops" {
		t.Errorf("githubWeb(github.com) = %q", got)
	}
	if got := githubWeb("https://ghe.example.com/api/v3/", "acme/gitops"); got != "https://ghe.example.com/acme/gitops" {
		t.Errorf("githubWeb(Enterprise) = %q", got)
	}
}

// reconcile --listen serves the status page beside the registry webhooks.
func TestReconcileListenServesStatusPage(t *testing.T) {
	bare := retryRemote(t, true)
	r, err := gitops.OpenReadOnly(t.Context(), gitops.Options{URL: "file://" + bare})
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	log := slog.New(slog.DiscardHandler)
	hooks := hookOptions{listen: addr, insecure: true, status: oneRepo("file://"+bare, r, "")}
	if err := startHooks(t.Context(), hooks, nil, hookWaker{oci: func(string) bool { return true }}, log); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the listener", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	checkStatusPage(t, "http://"+addr, map[string]map[string]string{"file://" + bare: {"fraud-detector": "Reverted"}})
	if code, _ := get(t, "http://"+addr+"/hooks/registry"); code == http.StatusNotFound {
		t.Errorf("GET /hooks/registry: 404; the status page must not hide the webhook")
	}
}
