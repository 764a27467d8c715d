package stack

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// FindTools says what provides each missing program: `make e2e-tools`
// builds etcd, kube-apiserver, argocd and kustomize, but not redis-server
// or kubectl, which it used to send people to build.
func TestFindToolsSaysWhereEachToolComesFrom(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := FindTools(nil)
	if !errors.Is(err, ErrToolsMissing) {
		t.Fatalf("err = %v, want ErrToolsMissing", err)
	}
	for _, want := range []string{
		"etcd, kube-apiserver, argocd, kustomize not built (run `make e2e-tools`)",
		"redis-server, kubectl not on PATH (run `scripts/ensure-tools.sh --e2e`",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to say %q", err, want)
		}
	}
}

// pathWith is a PATH holding the commands scripts/ensure-tools.sh uses
// and a stub for each of tools, and neither apt-get nor sudo: the script
// cannot install anything and must say how.
func pathWith(t *testing.T, tools ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"bash", "cat", "id", "sed", "uname", "dirname"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s: %v", name, err)
		}
		if err := os.Symlink(p, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range tools {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func ensureTools(t *testing.T, path string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join("..", "..", "..", "scripts", "ensure-tools.sh"), args...)
	cmd.Env = append(os.Environ(), "PATH="+path)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	return stderr.String(), err
}

// `make e2e` runs scripts/ensure-tools.sh --e2e, which asks for Debian's
// prometheus and redis-server (and installs them where it can), and, since
// Debian's archive has no recent kubectl, says how to install the one that
// matches the kube-apiserver scripts/e2e-tools.sh builds.
func TestEnsureToolsE2E(t *testing.T) {
	out, err := ensureTools(t, pathWith(t), "--e2e")
	if err == nil {
		t.Fatalf("ensure-tools.sh --e2e with nothing installed succeeded:\n%s", out)
	}
	script, rerr := os.ReadFile(filepath.Join("..", "..", "..", "scripts", "e2e-tools.sh"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	m := regexp.MustCompile(`"kube-apiserver (v[0-9.]+) `).FindSubmatch(script)
	if m == nil {
		t.Fatal("scripts/e2e-tools.sh names no kube-apiserver version")
	}
	for _, want := range []string{
		"missing: prometheus redis-server",
		"sudo apt-get install -y --no-install-recommends prometheus redis-server",
		"missing: kubectl",
		"curl -fsSLo kubectl https://dl.k8s.io/release/" + string(m[1]) + "/bin/linux/",
		"sudo install -m 0755 kubectl /usr/local/bin/kubectl",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ensure-tools.sh --e2e output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "docker-registry") {
		t.Errorf("make e2e does not run docker-registry:\n%s", out)
	}

	out, err = ensureTools(t, pathWith(t, "prometheus", "promtool", "redis-server"), "--e2e")
	if err == nil || strings.Contains(out, "redis-server") || !strings.Contains(out, "missing: kubectl") {
		t.Errorf("only kubectl missing: %v\n%s", err, out)
	}
	if out, err := ensureTools(t, pathWith(t, "prometheus", "promtool", "redis-server", "kubectl"), "--e2e"); err != nil || out != "" {
		t.Errorf("everything there: %v\n%s", err, out)
	}
}

// The other modes are as they were: make test needs docker-registry,
// make demo only prometheus.
func TestEnsureToolsTestAndDemo(t *testing.T) {
	if out, err := ensureTools(t, pathWith(t, "prometheus", "promtool")); err == nil || !strings.Contains(out, "missing: docker-registry") {
		t.Errorf("make test without docker-registry: %v\n%s", err, out)
	}
	if out, err := ensureTools(t, pathWith(t, "prometheus", "promtool"), "--demo"); err != nil || out != "" {
		t.Errorf("make demo with prometheus: %v\n%s", err, out)
	}
}

// The Makefile's e2e target runs the --e2e check before the 20-minute
// tool build.
func TestMakeE2EEnsuresTools(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	recipe := regexp.MustCompile(`(?m)^e2e:.*\n((?:\t.*\n)+)`).FindSubmatch(b)
	if recipe == nil {
		t.Fatal("no e2e target in the Makefile")
	}
	ensure := strings.Index(string(recipe[1]), "scripts/ensure-tools.sh --e2e")
	build := strings.Index(string(recipe[1]), "scripts/e2e-tools.sh")
	if ensure < 0 || ensure > build {
		t.Errorf("make e2e does not run scripts/ensure-tools.sh --e2e before scripts/e2e-tools.sh:\n%s", recipe[1])
	}
}
