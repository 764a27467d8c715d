package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
)

// TestSimulateRouteSteps runs a gateway plan whose first steps are a 50%
// mirror, judged by a screen gate, and then a dogfood header route,
// before any user-facing weight. The simulator sends the canary mirrored
// copies and header traffic: a 40% slower canary is reverted during the
// mirror with no user request answered by it, and the A/A promotes.
func TestSimulateRouteSteps(t *testing.T) {
	const plan = "testdata/simulate/route-steps.yaml"
	out, stderr, err := run(t, "simulate", "--plan", plan, "--seeds", "2", "--json",
		"--scenario", "../../bench/scenarios/shared/latency-plus-40.yaml",
		"--scenario", "../../bench/scenarios/shared/aa-identical.yaml")
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, stderr)
	}
	checkExampleRuns(t, out, map[string]string{"latency-plus-40": "revert", "aa-identical": "promote"})
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r simRun
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if r.Scenario == "latency-plus-40" && (r.DecidingGate != "shadow" || r.CanaryRequests != 0) {
			t.Errorf("seed %d: reverted by gate %q after %d user requests to the canary; want the mirror's gate, shadow, with none",
				r.Seed, r.DecidingGate, r.CanaryRequests)
		}
	}

	text, _, err := run(t, "simulate", "--plan", plan, "--seeds", "1",
		"--scenario", "../../bench/scenarios/shared/latency-plus-40.yaml")
	if err != nil || !strings.Contains(text, "mirrored requests no user saw") {
		t.Errorf("err = %v; want the mirrored requests counted in:\n%s", err, text)
	}
}
