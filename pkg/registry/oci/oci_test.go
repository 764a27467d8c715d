package oci

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/canarybot/canarybot/pkg/artifact"
	"github.com/canarybot/canarybot/pkg/canary"
)

// newRegistry starts an in-process OCI registry on loopback and returns
// its host:port.
func newRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func plan(repo, constraint string) *canary.CanaryPlan {
	return &canary.CanaryPlan{
		Metadata: canary.ObjectMeta{Name: "demo"},
		Spec: canary.PlanSpec{Model: canary.ModelSpec{
			Name:   "demo",
			Source: canary.SourceSpec{OCI: &canary.OCISource{Repository: repo, Semver: constraint}},
		}},
	}
}

func model(version string) map[string][]byte {
	return map[string][]byte{
		"config.json":       []byte(`{"model":"demo","version":"` + version + `"}`),
		"model.safetensors": []byte("weights of " + version),
	}
}

func push(t *testing.T, repo, version string, files map[string][]byte) string {
	t.Helper()
	d, err := Push(context.Background(), repo, version, files)
	if err != nil {
		t.Fatalf("Push %s: %v", version, err)
	}
	return d
}

func latest(t *testing.T, w *Watcher, p *canary.CanaryPlan) *canary.Artifact {
	t.Helper()
	a, err := w.Latest(context.Background(), p)
	if err != nil {
		t.Fatalf("Latest: %v", err)
	}
	return a
}

func TestPushAndLatest(t *testing.T) {
	repo := newRegistry(t) + "/models/demo"
	digests := map[string]string{}
	for _, v := range []string{"v1.0.0", "v2.0.0", "v3.0.0"} {
		digests[v] = push(t, repo, v, model(v))
	}
	if digests["v1.0.0"] == digests["v2.0.0"] || digests["v2.0.0"] == digests["v3.0.0"] ||
		digests["v1.0.0"] == digests["v3.0.0"] {
		t.Fatalf("digests are not distinct: %v", digests)
	}
	w := NewWatcher()
	a := latest(t, w, plan(repo, ">=1.0.0"))
	want := "oci://" + repo + "@" + digests["v3.0.0"]
	if a == nil || a.URI != want || a.Version != "v3.0.0" {
		t.Fatalf("Latest = %+v, want %s (v3.0.0)", a, want)
	}
	ref, err := artifact.Parse(a.URI)
	if err != nil || !ref.Pinned() {
		t.Fatalf("artifact.Parse(%q) = %+v, %v", a.URI, ref, err)
	}

	a = latest(t, w, plan(repo, "<3.0.0"))
	if a == nil || a.URI != "oci://"+repo+"@"+digests["v2.0.0"] || a.Version != "v2.0.0" {
		t.Fatalf("Latest(<3.0.0) = %+v, want v2.0.0 at %s", a, digests["v2.0.0"])
	}
	a = latest(t, w, plan(repo, ""))
	if a == nil || a.Version != "v3.0.0" {
		t.Fatalf("Latest(no constraint) = %+v, want v3.0.0", a)
	}
	if a := latest(t, w, plan(repo, ">=4")); a != nil {
		t.Fatalf("Latest(>=4) = %+v, want nil", a)
	}
}

func TestPushIsDeterministic(t *testing.T) {
	repo := newRegistry(t) + "/models/demo"
	first := push(t, repo, "v1", model("v1"))
	if again := push(t, repo, "v1", model("v1")); again != first {
		t.Fatalf("re-push of identical content: %s, then %s", first, again)
	}
}

func TestMovedTagYieldsNewDigest(t *testing.T) {
	repo := newRegistry(t) + "/models/demo"
	push(t, repo, "v1.0.0", model("v1"))
	old := push(t, repo, "v2.0.0", model("v2"))
	w := NewWatcher()
	before := latest(t, w, plan(repo, ""))

	moved := push(t, repo, "v2.0.0", model("v2-retrained"))
	if moved == old {
		t.Fatal("re-push with different content kept the digest")
	}
	after := latest(t, w, plan(repo, ""))
	if before.URI == after.URI || after.URI != "oci://"+repo+"@"+moved || after.Version != "v2.0.0" {
		t.Fatalf("after moving v2.0.0: before %+v, after %+v, want digest %s", before, after, moved)
	}
}

func TestNonSemverTagsIgnored(t *testing.T) {
	repo := newRegistry(t) + "/models/demo"
	want := push(t, repo, "1.2.0", model("1.2.0"))
	for _, tag := range []string{"latest", "main", "nightly-2024", "sha-abc123", "2.0.0-rc.1"} {
		push(t, repo, tag, model(tag))
	}
	a := latest(t, NewWatcher(), plan(repo, ""))
	if a == nil || a.Version != "1.2.0" || a.URI != "oci://"+repo+"@"+want {
		t.Fatalf("Latest = %+v, want 1.2.0 at %s", a, want)
	}
	a = latest(t, NewWatcher(), plan(repo, ">=2.0.0-0"))
	if a == nil || a.Version != "2.0.0-rc.1" {
		t.Fatalf("Latest(>=2.0.0-0) = %+v, want the prerelease", a)
	}
}

func TestEmptyRepository(t *testing.T) {
	host := newRegistry(t)
	push(t, host+"/models/other", "v1.0.0", model("v1"))
	if a := latest(t, NewWatcher(), plan(host+"/models/demo", "")); a != nil {
		t.Fatalf("Latest of a repository never pushed = %+v, want nil", a)
	}
	repo := host + "/models/only-tags"
	push(t, repo, "latest", model("x"))
	if a := latest(t, NewWatcher(), plan(repo, "")); a != nil {
		t.Fatalf("Latest with no semver tags = %+v, want nil", a)
	}
}

func TestBadPlanIsTerminal(t *testing.T) {
	repo := newRegistry(t) + "/models/demo"
	push(t, repo, "v1.0.0", model("v1"))
	noSource := plan(repo, "")
	noSource.Spec.Model.Source.OCI = nil
	for name, p := range map[string]*canary.CanaryPlan{
		"bad constraint": plan(repo, ">=banana"),
		"no source":      noSource,
		"bad repository": plan("Not A/Repo", ""),
		"no registry":    plan("demo", ""),
	} {
		t.Run(name, func(t *testing.T) {
			a, err := NewWatcher().Latest(context.Background(), p)
			if err == nil {
				t.Fatalf("Latest = %+v, want an error", a)
			}
			if !canary.IsTerminal(err) || !errors.Is(err, canary.ErrInvalidPlan) {
				t.Fatalf("error %v is not a terminal ErrInvalidPlan", err)
			}
		})
	}
}

func TestUnreachableRegistryIsRetryable(t *testing.T) {
	srv := httptest.NewServer(nil)
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewWatcher().Latest(ctx, plan(host+"/models/demo", ""))
	if err == nil || canary.IsTerminal(err) {
		t.Fatalf("error = %v, want a retryable error", err)
	}
}

func TestPullRoundTrip(t *testing.T) {
	repo := newRegistry(t) + "/models/demo"
	files := model("v7")
	d := push(t, repo, "v7.0.0", files)
	m, err := Pull(context.Background(), "oci://"+repo+":v7.0.0@"+d)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if m.Config.Version != "v7.0.0" || len(m.Config.Files) != len(files) {
		t.Fatalf("config = %+v", m.Config)
	}
	for n, b := range files {
		if string(m.Files[n]) != string(b) {
			t.Errorf("file %s = %q, want %q", n, m.Files[n], b)
		}
	}
	if _, err := Pull(context.Background(), "oci://"+repo+":v7.0.0"); !errors.Is(err, canary.ErrMutableReference) {
		t.Fatalf("Pull of a tag: error %v, want ErrMutableReference", err)
	}
}

func TestPushRejectsBadInput(t *testing.T) {
	repo := newRegistry(t) + "/models/demo"
	for name, files := range map[string]map[string][]byte{
		"no files":  {},
		"absolute":  {"/etc/passwd": nil},
		"traversal": {"../x": nil},
		"unclean":   {"a//b": nil},
	} {
		if _, err := Push(context.Background(), repo, "v1", files); err == nil {
			t.Errorf("%s: Push accepted %v", name, files)
		}
	}
	if _, err := Push(context.Background(), repo, "bad tag!", model("x")); err == nil {
		t.Error("Push accepted an invalid tag")
	}
}

func TestManifestIsAModelArtifact(t *testing.T) {
	repo := newRegistry(t) + "/models/demo"
	d := push(t, repo, "v1.0.0", model("v1"))
	ref, err := name.NewDigest(repo + "@" + d)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != types.OCIManifestSchema1 || m.ArtifactType != ArtifactType ||
		m.Config.MediaType != ConfigMediaType || len(m.Layers) != 1 || m.Layers[0].MediaType != LayerMediaType {
		t.Fatalf("manifest %s is not a canarybot model artifact", desc.Manifest)
	}
	if m.Annotations["org.opencontainers.image.version"] != "v1.0.0" {
		t.Errorf("annotations = %v", m.Annotations)
	}
}

func TestBasicAuth(t *testing.T) {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "bot" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	repo := strings.TrimPrefix(srv.URL, "http://") + "/models/demo"
	ctx := context.Background()
	if _, err := Push(ctx, repo, "v1.0.0", model("v1")); err == nil {
		t.Fatal("anonymous push succeeded")
	}
	d, err := Push(ctx, repo, "v1.0.0", model("v1"), WithBasicAuth("bot", "s3cret"), WithInsecure())
	if err != nil {
		t.Fatalf("Push with credentials: %v", err)
	}
	if _, err := NewWatcher().Latest(ctx, plan(repo, "")); err == nil || canary.IsTerminal(err) {
		t.Fatalf("anonymous Latest: error %v, want a retryable error", err)
	}
	a, err := NewWatcher(WithBasicAuth("bot", "s3cret")).Latest(ctx, plan(repo, ""))
	if err != nil || a == nil || a.URI != "oci://"+repo+"@"+d {
		t.Fatalf("Latest with credentials = %+v, %v", a, err)
	}
}
