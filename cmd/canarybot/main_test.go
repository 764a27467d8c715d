package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the CLI in-process.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestValidateListsEveryErrorAndFails(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(`apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: Broken}
spec:
  model: {name: x, source: {oci: {repository: "ghcr.io/x/y:latest"}}}
  traffic: {mode: istio}
  overlay: ../escape
  argocd: {}
  steps:
  - setWeight: 150
  - analysis: {gates: [missing]}
  gates:
  - name: lat
    threshold: {query: up, successCondition: "result <"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := run(t, "validate", bad, "../../examples/qwen-gateway.yaml", "../../examples/fraud-detector-kserve.yaml", "../../examples/qwen-gpu.yaml")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err = %v, want exit 1", err)
	}
	for _, want := range []string{
		"bad.yaml: metadata.name: must be a DNS label",
		"bad.yaml: spec.model.source.oci.repository: must name a repository, without a tag",
		`bad.yaml: spec.traffic.mode: must be "kserve", "gateway" or "llmisvc", got "istio"`,
		"bad.yaml: spec.overlay: must stay inside the repo",
		"bad.yaml: spec.argocd.application: is required",
		"bad.yaml: spec.steps[0].setWeight: must be between 0 and 100, got 150",
		`bad.yaml: spec.steps[1].analysis.gates[0]: no gate named "missing"`,
		"bad.yaml: spec.gates[0].threshold.successCondition: compile condition",
		"qwen-gateway.yaml: ok",
		"fraud-detector-kserve.yaml: ok",
		"qwen-gpu.yaml: ok",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "1 of 4 plans are invalid") {
		t.Errorf("stderr = %q", stderr)
	}
}

func TestValidateRefusesMissingAndOversizedFiles(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("#"), 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "validate", big, "/nonexistent/plan.yaml")
	if err == nil || !strings.Contains(out, "over the 1048576-byte limit") || !strings.Contains(out, "no such file") {
		t.Errorf("err = %v, out:\n%s", err, out)
	}
}

// The binary must start. (kustomize's plugin loader and go-nvml's lazy
// symbols aborted every binary at start unless the build tag was set;
// go-nvml is now linked into cmd/gpu-agent only.)
func TestBinaryStarts(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "canarybot ") {
		t.Fatalf("canarybot version: %v\n%s", err, out)
	}
}

// binPath is the canarybot binary TestMain builds once for this run.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "canarybot-bin-")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "canarybot")
	cmd := exec.Command("go", "build", "-o", binPath, ".")
	cmd.Env = os.Environ()
	if !strings.Contains(os.Getenv("GOFLAGS"), "kustomize_disable_go_plugin_support") {
		cmd.Env = append(cmd.Env, "GOFLAGS=-tags=kustomize_disable_go_plugin_support")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic("go build canarybot: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildBinary(*testing.T) string { return binPath }
