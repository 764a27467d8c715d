package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bench runs the repository's plans on a shared-fault A/A and a bursty
// canary, and prints the issue's targets against a baseline and the blind
// spots no scenario covers.
func TestBenchPrintsIssueTargetsAndBlindSpots(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"aa.yaml": "name: shared-burst-aa\ntraffic: {rps: 20, maxDuration: 30m}\n" +
			"stable: {errorRate: 0.001, latency: {medianSeconds: 0.3, sigma: 0.5}}\nchanges:\n" +
			"- {at: 2m, for: 30s, target: canary, set: {errorRate: 0.05}}\n" +
			"- {at: 2m, for: 30s, target: stable, set: {errorRate: 0.05}}\nexpect: promote\n",
		"bad.yaml": "name: slow-spells\ntraffic: {rps: 20, maxDuration: 30m}\n" +
			"stable: {errorRate: 0.001, latency: {medianSeconds: 0.3, sigma: 0.5}}\nchanges:\n" +
			"- {at: 2m, for: 30s, target: canary, set: {latency: {medianSeconds: 0.9, sigma: 0.5}}}\n" +
			"- {at: 4m, for: 30s, target: canary, set: {latency: {medianSeconds: 0.9, sigma: 0.5}}}\nexpect: revert\n",
		"base.txt": "# p80 canary requests\nslow-spells 100000\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plans := filepath.Join("..", "..", "bench", "plans")
	out, stderr, err := run(t, "bench", "--plans", plans, "--scenarios", filepath.Join(dir, "aa.yaml")+","+filepath.Join(dir, "bad.yaml"),
		"--seeds", "2", "--policies", "judge,judge-strict", "--webhook-deliveries", "0", "--baseline", filepath.Join(dir, "base.txt"))
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr)
	}
	for _, want := range []string{
		"Targets (issue 17: intermittent faults and decision speed, canarybot judge):",
		"[PASS] every bad scenario reverted in ≥ 99% of seeds: 1 scenarios, worst slow-spells 100.0%",
		"[PASS] A/A false reverts ≤ 1%, all 1 A/A scenarios pooled (judge): 0/2 = 0.0%",
		"[PASS] no scenario's p80 canary requests more than 10% above the baseline's: 1 compared",
		"[FAIL] canary-faster promoted in ≥ 99.5% of seeds: canary-faster not run",
		"What the bench cannot see: ",
		"load-dependent regression",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Progress: a line as each scenario finishes, on stderr.
	for _, want := range []string{"bench: judge 1/2 scenarios, ", "bench: judge 2/2 scenarios, ", "bench: judge-strict 1/1 scenarios, shared-burst-aa "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "seed-thresholds on") {
		t.Errorf("--policies left seed-thresholds out, but it ran:\n%s", stderr)
	}
	if _, _, err := run(t, "bench", "--scenarios", dir, "--policies", "judge,best"); err == nil || !strings.Contains(err.Error(), `unknown policy "best"`) {
		t.Errorf("an unknown policy: %v", err)
	}
}
