package imagebuild

import (
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// goBuild builds the command in dir (relative to this package) with
// version stamped in, as the Makefile does (its build tag added when the
// environment lacks it), and returns the binary.
func goBuild(t *testing.T, pkg, version string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", bin, pkg)
	cmd.Env = os.Environ()
	if !strings.Contains(os.Getenv("GOFLAGS"), "kustomize_disable_go_plugin_support") {
		cmd.Env = append(cmd.Env, "GOFLAGS=-tags=kustomize_disable_go_plugin_support")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// caBundle is the CA bundle the images copy, skipping the test where this
// machine has none.
func caBundle(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(CABundle); err != nil {
		t.Skipf("no CA bundle on this machine: %v", err)
	}
	return CABundle
}

// The canarybot image goes through a registry and back, and the binary
// unpacked from it runs, through the image's own loader and libraries when
// it is dynamically linked (as the tests build it, with cgo).
func TestCanarybotImageRunsFromRegistry(t *testing.T) {
	meta := Meta{Version: "v9.8.7", Revision: "abc123", Source: DefaultSource, Created: time.Unix(1700000000, 0).UTC(),
		CABundle: caBundle(t)}
	spec, err := CanarybotSpec(goBuild(t, "../../cmd/canarybot", "v9.8.7"), meta)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/canarybot/canarybot:v9.8.7"
	pinned, err := Push(img, ref)
	if err != nil {
		t.Fatal(err)
	}
	pulledRef, err := name.ParseReference(pinned)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(pulledRef)
	if err != nil {
		t.Fatalf("pull %s: %v", pinned, err)
	}
	cf, err := pulled.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || !slices.Equal(cf.Config.Entrypoint, []string{"/usr/local/bin/canarybot"}) ||
		cf.OS != "linux" || cf.Config.Labels["org.opencontainers.image.version"] != "v9.8.7" ||
		cf.Config.Labels["org.opencontainers.image.revision"] != "abc123" ||
		cf.Config.Labels["org.opencontainers.image.created"] != "2023-11-14T22:13:20Z" {
		t.Errorf("config: user %q, entrypoint %q, os %q, labels %v", cf.Config.User, cf.Config.Entrypoint, cf.OS, cf.Config.Labels)
	}
	root := t.TempDir()
	if err := Unpack(pulled, root); err != nil {
		t.Fatal(err)
	}
	wantBaseFiles(t, root)
	cmd, err := Command(root, spec, "version")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "canarybot v9.8.7" {
		t.Fatalf("canarybot version from the pulled image: %v: %q", err, out)
	}
	t.Logf("%s: %d layers, ran %q: %s", pinned, len(spec.Layers), cmd.Args, out)
}

// wantBaseFiles checks the base layer in an unpacked image: nonroot in
// passwd and group, its home, /tmp, and the CA bundle as on this machine.
func wantBaseFiles(t *testing.T, root string) {
	t.Helper()
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if !strings.Contains(read("/etc/passwd"), "nonroot:x:65532:65532:") || !strings.Contains(read("/etc/group"), "nonroot:x:65532:") {
		t.Errorf("passwd/group lack nonroot 65532:\n%s%s", read("/etc/passwd"), read("/etc/group"))
	}
	host, err := os.ReadFile(CABundle)
	if err != nil {
		t.Fatal(err)
	}
	if read(CABundle) != string(host) {
		t.Errorf("%s differs from this machine's", CABundle)
	}
	for p, mode := range map[string]os.FileMode{"/tmp": os.ModeDir | os.ModeSticky | 0o777, "/home/nonroot": os.ModeDir | 0o700} {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v, mode %v, want %v", p, err, fi.Mode(), mode)
		}
	}
}

// The gpu-agent image holds the cgo binary with the glibc files it and
// libnvidia-ml need, and runs from them alone; a library missing from an
// image is caught, not taken from this machine.
func TestGPUAgentImageHoldsItsLibraries(t *testing.T) {
	spec, err := GPUAgentSpec(goBuild(t, "../../cmd/gpu-agent", "v1.0.0"), Meta{Version: "v1.0.0", Source: DefaultSource,
		Created: time.Unix(0, 0), CABundle: caBundle(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Layers[1]) == 0 {
		t.Skip("gpu-agent was built without cgo: no libraries to check")
	}
	img, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := Unpack(img, root); err != nil {
		t.Fatal(err)
	}
	var libs []string
	for _, f := range spec.Layers[1] {
		libs = append(libs, filepath.Base(f.Path))
	}
	for _, want := range append(NVMLLibs(), "libc.so.6") {
		if !slices.Contains(libs, want) {
			t.Errorf("gpu-agent image lacks %s (has %v)", want, libs)
		}
	}
	cmd, err := Command(root, spec, "--version")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "gpu-agent version v1.0.0" {
		t.Fatalf("gpu-agent --version from the image: %v: %q", err, out)
	}
	for _, f := range spec.Layers[1] {
		if filepath.Base(f.Path) == "libc.so.6" {
			if err := os.Remove(filepath.Join(root, f.Path)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := Command(root, spec, "--version"); err == nil || !strings.Contains(err.Error(), "the image lacks a library: libc.so.6") {
		t.Errorf("without libc.so.6 in the image: %v, want it refused", err)
	}
}

// Layers are reproducible, list parents before children with their
// owners and modes, and refuse paths that are not clean and absolute.
func TestLayer(t *testing.T) {
	files := []File{{Path: "/usr/local/bin/x", Data: []byte("x"), Mode: 0o755}, {Path: "/home/nonroot", Dir: true, Mode: 0o700, UID: NonRoot, GID: NonRoot}}
	digest := func() string {
		l, err := Layer(files, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	if a, b := digest(), digest(); a != b {
		t.Errorf("the same files gave two digests: %s, %s", a, b)
	}
	var paths []string
	for _, f := range withParents(files) {
		paths = append(paths, f.Path)
	}
	if want := []string{"/home", "/home/nonroot", "/usr", "/usr/local", "/usr/local/bin", "/usr/local/bin/x"}; !slices.Equal(paths, want) {
		t.Errorf("entries %v, want %v", paths, want)
	}
	for _, bad := range [][]File{{{Path: "etc/passwd"}}, {{Path: "/etc/../x"}}, {{Path: "/a", Data: []byte("1")}, {Path: "/a"}}} {
		if _, err := Layer(bad, time.Unix(0, 0)); err == nil {
			t.Errorf("Layer(%v) = nil error", bad)
		}
	}
}

// SOURCE_DATE_EPOCH stamps the images; unset, the Unix epoch does.
func TestSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if got, err := SourceDateEpoch(); err != nil || !got.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("SourceDateEpoch() = %v, %v", got, err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, err := SourceDateEpoch(); err == nil {
		t.Error("SOURCE_DATE_EPOCH=yesterday accepted")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")
	if got, _ := SourceDateEpoch(); !got.Equal(time.Unix(0, 0)) {
		t.Errorf("unset: %v", got)
	}
}
