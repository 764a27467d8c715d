package oci

import (
	"bytes"
	"context"
	"encoding/base64"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestHighestByRegex(t *testing.T) {
	tags := []string{"build-10", "build-9", "build-x", "main", "build-100-rc", "nightly-20260102", "nightly-20251231"}
	cases := []struct{ re, want string }{
		{`^build-(\d+)$`, "build-10"},
		{`^build-`, "build-x"},
		{`^nightly-(\d{8})$`, "nightly-20260102"},
		{`^release-`, ""},
	}
	for _, tc := range cases {
		sel := selector{filter: regexp.MustCompile(tc.re)}
		if got := highestByRegex(sel.candidates(tags), sel.filter); got != tc.want {
			t.Errorf("highestByRegex(%s) = %q, want %q", tc.re, got, tc.want)
		}
	}
}

func TestNewest(t *testing.T) {
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	got, ok := newest([]stamped{{tag: "a", created: t1}, {tag: "c", created: t1.Add(time.Hour)}, {tag: "b", created: t1.Add(time.Hour)}, {tag: "z"}})
	if !ok || got.tag != "c" {
		t.Errorf("newest = %+v, want c (latest time, ties to the last tag in byte order)", got)
	}
	if _, ok := newest([]stamped{{tag: "z"}}); ok {
		t.Error("a tag without a time was picked")
	}
}

func TestSelectorRejectsBadPolicies(t *testing.T) {
	for name, src := range map[string]canary.OCISource{
		"unknown policy":      {Policy: "newest"},
		"regex without regex": {Policy: canary.OCIPolicyRegex},
		"bad regex":           {TagRegex: "(("},
		"bad semver":          {Semver: ">=banana"},
	} {
		if _, err := newSelector(&src); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func ociPlan(repo string, src canary.OCISource) *canary.CanaryPlan {
	src.Repository = repo
	return &canary.CanaryPlan{Metadata: canary.ObjectMeta{Name: "demo"}, Spec: canary.PlanSpec{Model: canary.ModelSpec{
		Name: "demo", Source: canary.SourceSpec{OCI: &src}}}}
}

func TestRegexPolicy(t *testing.T) {
	repo := newRegistry(t) + "/models/demo"
	d := map[string]string{}
	for _, tag := range []string{"build-9", "build-10", "build-x", "v9.0.0"} {
		d[tag] = push(t, repo, tag, model(tag))
	}
	a := latest(t, NewWatcher(), ociPlan(repo, canary.OCISource{Policy: canary.OCIPolicyRegex, TagRegex: `^build-(\d+)$`}))
	if a == nil || a.Version != "build-10" || a.URI != "oci://"+repo+"@"+d["build-10"] {
		t.Fatalf("Latest = %+v, want build-10 pinned at %s", a, d["build-10"])
	}
}

// pushImage writes img under tag and returns its digest.
func pushImage(t *testing.T, repo, tag string, img v1.Image) string {
	t.Helper()
	ref, err := name.NewTag(repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("write %s: %v", ref, err)
	}
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func TestLatestPolicyByAnnotationThenConfig(t *testing.T) {
	repo := newRegistry(t) + "/models/demo"
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	annotated := func(key, created string) v1.Image {
		return mutate.Annotations(empty.Image, map[string]string{key: created, "n": created}).(v1.Image)
	}
	configured := func(created string) v1.Image {
		img, err := mutate.CreatedAt(empty.Image, v1.Time{Time: at(created)})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	// Pushed out of time order: the newest is neither the last pushed nor
	// the highest tag.
	d := map[string]string{
		"main-b": pushImage(t, repo, "main-b", annotated(DefaultCreatedAnnotation, "2026-03-01T00:00:00Z")),
		"main-c": pushImage(t, repo, "main-c", configured("2026-02-01T00:00:00Z")),
		"main-a": pushImage(t, repo, "main-a", annotated(DefaultCreatedAnnotation, "2026-01-01T00:00:00Z")),
		"main-d": pushImage(t, repo, "main-d", annotated(DefaultCreatedAnnotation, "not a time")),
		"dev-z":  pushImage(t, repo, "dev-z", annotated(DefaultCreatedAnnotation, "2027-01-01T00:00:00Z")),
		"main-e": pushImage(t, repo, "main-e", annotated("build.time", "2026-06-01T00:00:00Z")),
	}
	a := latest(t, NewWatcher(), ociPlan(repo, canary.OCISource{Policy: canary.OCIPolicyLatest, TagRegex: "^main-"}))
	if a == nil || a.Version != "main-b" || a.URI != "oci://"+repo+"@"+d["main-b"] {
		t.Fatalf("Latest = %+v, want main-b (created 2026-03-01) at %s", a, d["main-b"])
	}
	a = latest(t, NewWatcher(), ociPlan(repo, canary.OCISource{Policy: canary.OCIPolicyLatest, TagRegex: "^main-", CreatedAnnotation: "build.time"}))
	if a == nil || a.Version != "main-e" {
		t.Fatalf("Latest by build.time = %+v, want main-e", a)
	}
	// main-d's annotation is not a time and its config has none: only
	// main-c's config "created" counts.
	a = latest(t, NewWatcher(), ociPlan(repo, canary.OCISource{Policy: canary.OCIPolicyLatest, TagRegex: "^main-[cd]$"}))
	if a == nil || a.Version != "main-c" || a.URI != "oci://"+repo+"@"+d["main-c"] {
		t.Fatalf("Latest by config created = %+v, want main-c", a)
	}
	if a := latest(t, NewWatcher(), ociPlan(repo, canary.OCISource{Policy: canary.OCIPolicyLatest, TagRegex: "^main-d$"})); a != nil {
		t.Fatalf("a tag without a creation time was proposed: %+v", a)
	}
	a = latest(t, NewWatcher(), ociPlan(repo, canary.OCISource{Policy: canary.OCIPolicyLatest}))
	if a == nil || a.Version != "dev-z" {
		t.Fatalf("Latest without a filter = %+v, want dev-z", a)
	}
}

// v2 and v3 pushed together: the watcher proposes the highest, v3.
func TestTwoVersionsArriveTogether(t *testing.T) {
	repo := newRegistry(t) + "/models/demo"
	push(t, repo, "v1.0.0", model("v1"))
	w := NewWatcher()
	if a := latest(t, w, plan(repo, "")); a == nil || a.Version != "v1.0.0" {
		t.Fatalf("before: %+v", a)
	}
	d3 := push(t, repo, "v3.0.0", model("v3"))
	push(t, repo, "v2.0.0", model("v2")) // pushed last, but lower
	a := latest(t, w, plan(repo, ""))
	if a == nil || a.Version != "v3.0.0" || a.URI != "oci://"+repo+"@"+d3 {
		t.Fatalf("Latest = %+v, want v3.0.0 at %s", a, d3)
	}
}

func TestMovedTagIsLoggedOnce(t *testing.T) {
	repo := newRegistry(t) + "/models/demo"
	old := push(t, repo, "v2.0.0", model("v2"))
	var logs bytes.Buffer
	w := NewWatcher(WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	latest(t, w, plan(repo, ""))
	moved := push(t, repo, "v2.0.0", model("v2-retrained"))
	for i := 0; i < 3; i++ {
		if a := latest(t, w, plan(repo, "")); a.URI != "oci://"+repo+"@"+moved {
			t.Fatalf("Latest = %+v, want the new digest %s", a, moved)
		}
	}
	if n := strings.Count(logs.String(), "tag moved"); n != 1 {
		t.Fatalf("%d 'tag moved' lines, want 1:\n%s", n, logs.String())
	}
	for _, want := range []string{"tag=v2.0.0", "from=" + old, "to=" + moved} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// authRegistry serves an in-process registry that admits only requests
// carrying want as their Authorization header.
func authRegistry(t *testing.T, want, challenge string) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(ioDiscard{}, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != want {
			w.Header().Set("WWW-Authenticate", challenge)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

func TestBearerToken(t *testing.T) {
	host := authRegistry(t, "Bearer reg-token", `Basic realm="test"`)
	repo := host + "/models/demo"
	ctx := context.Background()
	d, err := Push(ctx, repo, "v1.0.0", model("v1"), WithBearerToken("reg-token"))
	if err != nil {
		t.Fatalf("Push with a bearer token: %v", err)
	}
	if _, err := NewWatcher(WithBearerToken("wrong")).Latest(ctx, plan(repo, "")); err == nil || canary.IsTerminal(err) {
		t.Fatalf("Latest with a wrong token: %v, want a retryable error", err)
	}
	a, err := NewWatcher(WithBearerToken("reg-token")).Latest(ctx, plan(repo, ""))
	if err != nil || a == nil || a.URI != "oci://"+repo+"@"+d {
		t.Fatalf("Latest with the token = %+v, %v", a, err)
	}
}

func TestDockerConfig(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("bot:s3cret"))
	host := authRegistry(t, basic, `Basic realm="test"`)
	repo := host + "/models/demo"
	ctx := context.Background()
	d, err := Push(ctx, repo, "v1.0.0", model("v1"), WithBasicAuth("bot", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := `{"auths":{"` + host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("bot:s3cret")) + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := NewWatcher(WithDockerConfig(dir)).Latest(ctx, plan(repo, ""))
	if err != nil || a == nil || a.URI != "oci://"+repo+"@"+d {
		t.Fatalf("Latest with the docker config = %+v, %v", a, err)
	}
	if _, err := NewWatcher(WithDockerConfig(t.TempDir())).Latest(ctx, plan(repo, "")); err == nil {
		t.Fatal("an empty docker config authenticated")
	}
}
