package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `go build ./cmd/canarybot` and `go install` with no flags, no GOFLAGS
// and no build tags (the way a user builds it) give a binary that starts.
// Without the Makefile's kustomize_disable_go_plugin_support tag
// kustomize's plugin loader is linked in, which binds every symbol at
// start; that aborted any binary also holding go-nvml's lazily bound
// symbols, so nothing canarybot links may import go-nvml.
func TestPlainBuildStarts(t *testing.T) {
	env := withoutGOFLAGS(os.Environ())
	list := exec.Command("go", "list", "-deps", ".")
	list.Env = env
	deps, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if !strings.Contains(string(deps), "\nplugin\n") {
		t.Errorf("without the tag, kustomize's plugin loader (package plugin) should be linked: is the build using the tag?")
	}
	if strings.Contains(string(deps), "github.com/NVIDIA/go-nvml") {
		t.Errorf("canarybot links go-nvml; only cmd/gpu-agent may")
	}
	bin := filepath.Join(t.TempDir(), "canarybot")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("plain go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "canarybot ") {
		t.Fatalf("canarybot version from a plain build: %v\n%s", err, out)
	}
}

// withoutGOFLAGS is env without GOFLAGS (the Makefile's build tag).
func withoutGOFLAGS(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GOFLAGS=") {
			out = append(out, kv)
		}
	}
	return out
}
