package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/internal/promtooltest"
)

var updateImport = flag.Bool("update-import", false, "rewrite testdata/import/*/expected.{yaml,stderr}")

// runImportIn runs the built binary in dir with the case's files and
// flags (one a line), so that the file names it prints are relative.
func runImportIn(t *testing.T, dir string, extra ...string) (string, string, int) {
	t.Helper()
	args := append([]string{"import", "argo-rollouts"}, lines(t, filepath.Join(dir, "files"))...)
	args = append(append(args, lines(t, filepath.Join(dir, "flags"))...), extra...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("run canarybot %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), 0
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestImportGolden imports each case of testdata/import (the vLLM canary
// of the design notes and Argo Rollouts' documented examples): the plan
// and the stderr listing match the golden files byte for byte, the
// command exits 0, and the plan passes every check of canarybot validate.
func TestImportGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/import/*/files")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, c := range cases {
		dir := filepath.Dir(c)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			stdout, stderr, code := runImportIn(t, dir)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			golden(t, filepath.Join(dir, "expected.yaml"), stdout)
			golden(t, filepath.Join(dir, "expected.stderr"), stderr)
			plan := filepath.Join(t.TempDir(), "plan.yaml")
			if err := os.WriteFile(plan, []byte(stdout), 0o600); err != nil {
				t.Fatal(err)
			}
			if errs := validateFile(plan, nil); len(errs) > 0 {
				t.Errorf("the imported plan does not validate:\n%s", strings.Join(errs, "\n"))
			}
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *updateImport {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-import to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update-import to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestImportPartialNeedsFlag: without --allow-partial, a Rollout with
// parts canarybot cannot carry lists each with its path, writes no plan
// and exits 1; with it, the plan is written and lists them too.
func TestImportPartialNeedsFlag(t *testing.T) {
	dir := t.TempDir()
	src := "testdata/import/unsupported"
	for _, f := range []string{"rollout.yaml", "mixed.yaml", "files"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	flags := strings.ReplaceAll(strings.Join(lines(t, filepath.Join(src, "flags")), "\n"), "--allow-partial", "")
	if err := os.WriteFile(filepath.Join(dir, "flags"), []byte(flags), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runImportIn(t, dir, "--out", "plan.yaml")
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want exit 1 and nothing written\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "plan.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("plan.yaml written without --allow-partial: %v", err)
	}
	for _, want := range []string{
		"not carried over: rollout.yaml: spec.strategy.canary.steps[2].setMirrorRoute.match:",
		"not carried over: rollout.yaml: spec.strategy.canary.steps[3].setWeight: canarybot ends mirror route",
		"not carried over: rollout.yaml: spec.strategy.canary.steps[4].experiment:",
		"not carried over: rollout.yaml: spec.strategy.canary.steps[0].setCanaryScale:",
		"not carried over: rollout.yaml: spec.strategy.canary.antiAffinity:",
		"not carried over: mixed.yaml: AnalysisTemplate mixed: metrics[1].provider.datadog:",
		"not carried over: mixed.yaml: AnalysisTemplate mixed: metrics[2].provider.prometheus.query: {{args.pod-hash}} is set by valueFrom",
		"--allow-partial writes it anyway",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, stderr, code := runImportIn(t, dir, "--out", "plan.yaml", "--allow-partial"); code != 0 {
		t.Fatalf("with --allow-partial: exit %d\n%s", code, stderr)
	}
	if errs := validateFile(filepath.Join(dir, "plan.yaml"), nil); len(errs) > 0 {
		t.Errorf("the partial plan does not validate:\n%s", strings.Join(errs, "\n"))
	}
}

// TestImportSimulates: canarybot simulate runs the imported vLLM plan,
// its PromQL threshold gates answered by the real Prometheus replaying
// the simulated vLLM series, and promotes the A/A scenario.
func TestImportSimulates(t *testing.T) {
	promtooltest.Path(t)
	stdout, stderr, code := runImportIn(t, "testdata/import/vllm")
	if code != 0 {
		t.Fatalf("import: exit %d\n%s", code, stderr)
	}
	plan := filepath.Join(t.TempDir(), "qwen.yaml")
	if err := os.WriteFile(plan, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := run(t, "simulate", "--plan", plan, "--metrics", "prometheus", "--seeds", "2", "--json",
		"--scenario", "../../bench/scenarios/shared/aa-identical.yaml")
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, stderr)
	}
	checkExampleRuns(t, out, map[string]string{scenarioName(t, "../../bench/scenarios/shared/aa-identical.yaml"): "promote"})
	if strings.Contains(stderr, "decided differently") {
		t.Errorf("the replay through Prometheus decided differently from memory:\n%s", stderr)
	}
}
