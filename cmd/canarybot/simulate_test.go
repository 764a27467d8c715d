package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// gatelessPlan promotes after a pause, whatever the gates would say, so
// that these tests do not depend on which evaluators simGates provides.
const gatelessPlan = `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: sim}
spec:
  model: {name: m, source: {oci: {repository: sim.local/model}}}
  traffic: {mode: kserve, kserve: {inferenceService: m}}
  overlay: overlays/m
  argocd: {application: m}
  steps:
  - setWeight: 10
  - pause: {duration: 2m}
  - setWeight: 100
`

// simFixtures writes the plan and a scenario directory with two scenarios.
func simFixtures(t *testing.T) (plan, dir string) {
	t.Helper()
	root := t.TempDir()
	plan = filepath.Join(root, "plan.yaml")
	dir = filepath.Join(root, "scenarios")
	files := map[string]string{
		plan: gatelessPlan,
		filepath.Join(dir, "a.yaml"): "name: same\ntraffic: {rps: 10, maxDuration: 10m}\n" +
			"stable: {errorRate: 0.01, latency: {medianSeconds: 0.3, sigma: 0.5}}\nexpect: promote\n",
		filepath.Join(dir, "b.yaml"): "name: worse\ntraffic: {rps: 10, maxDuration: 10m}\n" +
			"stable: {errorRate: 0.01}\ncanary: {errorRate: 0.5}\nexpect: revert\n",
	}
	for p, body := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return plan, dir
}

func TestSimulateJSONPrintsOneObjectPerRun(t *testing.T) {
	plan, dir := simFixtures(t)
	out, _, err := run(t, "simulate", "--plan", plan, "--scenario", dir, "--seeds", "2", "--seed-base", "7", "--json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 JSON lines, got:\n%s", out)
	}
	want := []string{"canaryRequests", "decidedAfterSeconds", "decidingGate", "outcome", "scenario", "seed"}
	var order []string
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Errorf("fields %v, want exactly %v", keys, want)
		}
		// Without gates the plan promotes after the 2m pause.
		if m["outcome"] != "promote" || m["decidedAfterSeconds"].(float64) < 120 || m["canaryRequests"].(float64) <= 0 {
			t.Errorf("run %s", l)
		}
		var r simRun
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		order = append(order, fmt.Sprintf("%s/%d", r.Scenario, r.Seed))
	}
	if got := strings.Join(order, " "); got != "same/7 same/8 worse/7 worse/8" {
		t.Errorf("order %s", got)
	}
}

func TestSimulatePrintsRunsAndSummaries(t *testing.T) {
	plan, dir := simFixtures(t)
	out, _, err := run(t, "simulate", "--plan", plan, "--seeds", "3", filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"same                     seed 1     promote  after ",
		"worse                    seed 3     promote ",
		"WRONG (expected revert)",
		"summary same                     expect promote correct 3/3 (100%)  promote 3 revert 0 timeout 0",
		"summary worse                    expect revert  correct 0/3 (0%)",
		"canary requests before the decision: median ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSimulateRefusesBadInput(t *testing.T) {
	plan, dir := simFixtures(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: x\ntraffic: {rps: 1, maxDuration: 1m}\nstable: {errorRat: 0.1}\nexpect: promote\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		args []string
		want string
	}{
		"no plan":       {[]string{"--scenario", dir}, "--plan is required"},
		"no scenario":   {[]string{"--plan", plan}, "at least one --scenario"},
		"zero seeds":    {[]string{"--plan", plan, "--scenario", dir, "--seeds", "0"}, "--seeds must be at least 1"},
		"missing plan":  {[]string{"--plan", "/nonexistent.yaml", "--scenario", dir}, "no such file"},
		"invalid plan":  {[]string{"--plan", bad, "--scenario", dir}, "--plan " + bad},
		"bad scenario":  {[]string{"--plan", plan, "--scenario", bad}, "stable.errorRat: unknown field"},
		"empty dir":     {[]string{"--plan", plan, "--scenario", t.TempDir()}, "no *.yaml scenarios"},
		"missing scene": {[]string{"--plan", plan, "--scenario", "/nonexistent"}, "no such file"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out, _, err := run(t, append([]string{"simulate"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
		})
	}
}

// The GPU scenarios revert through the GPU gates of the default plan: the
// shared gpu-xid on its Xid, bench/scenarios' memory creep on its growth
// rate, while a GPU as full and warm as stable's is promoted.
func TestSimulateGPUScenarios(t *testing.T) {
	out, _, err := run(t, "simulate", "--plan", "../../bench/plans/judge.yaml", "--seeds", "3", "--json",
		"--scenario", "../../bench/scenarios/shared/gpu-xid.yaml", "--scenario", "../../bench/scenarios")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"gpu-xid":          {"revert", "gpu-xid"},
		"gpu-memory-creep": {"revert", "gpu-memory"},
		"gpu-steady-aa":    {"promote", ""},
	}
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r simRun
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		w, ok := want[r.Scenario]
		if !ok {
			continue
		}
		seen[r.Scenario]++
		if r.Outcome != w[0] || r.DecidingGate != w[1] {
			t.Errorf("%s seed %d: %s by %q, want %s by %q", r.Scenario, r.Seed, r.Outcome, r.DecidingGate, w[0], w[1])
		}
	}
	for sc := range want {
		if seen[sc] != 3 {
			t.Errorf("%s ran %d times, want 3:\n%s", sc, seen[sc], out)
		}
	}
}
