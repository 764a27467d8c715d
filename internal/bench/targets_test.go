package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/sim"
)

// The issue's targets: each line PASS or FAIL from the runs, the A/A
// scenarios pooled, and p80s compared with the baseline.
func TestRenderIssueTargets(t *testing.T) {
	res := Results{}
	add := func(sc, expect string, n, wrong int, reqs int64) {
		for i := range n {
			out := expect
			if i < wrong {
				out = map[string]string{"promote": "revert", "revert": "promote"}[expect]
			}
			res.Add(PolicyJudge, Run{Scenario: sc, Seed: uint64(i), Expected: expect, Outcome: out, CanaryRequests: reqs})
		}
	}
	add("aa-identical", "promote", 200, 1, 2000)
	add("burst-aa", "promote", 200, 2, 2000)
	add("burst-errors", "revert", 200, 3, 700)
	add("error-rate-10x", "revert", 200, 0, 850)
	add("latency-plus-20", "revert", 200, 0, 400)
	add("canary-faster", "promote", 200, 0, 2500)
	order := []string{"aa-identical", "burst-aa", "burst-errors", "error-rate-10x", "latency-plus-20", "canary-faster"}
	aa := []string{"aa-identical", "burst-aa"} // the judge's runs alone: no strict policy
	var b strings.Builder
	ok := RenderIssueTargets(&b, res, order, aa, Baseline{"aa-identical": 1900, "canary-faster": 2000, "error-rate-10x": 1338})
	out := b.String()
	if ok {
		t.Errorf("all passed; want failures:\n%s", out)
	}
	for _, want := range []string{
		"[FAIL] every bad scenario reverted in ≥ 99% of seeds: 3 scenarios, worst burst-errors 98.5%; under 99%: burst-errors 98.5%",
		"[PASS] A/A false reverts ≤ 1%, all 2 A/A scenarios pooled (judge): 3/400 = 0.8%",
		"[FAIL] no scenario's p80 canary requests more than 10% above the baseline's: 3 compared, largest change canary-faster +25.0%; over: canary-faster 2000→2500; 3 not in the baseline",
		"[PASS] errors 0.1%→1% (error-rate-10x) decided within 900 canary requests at p80: p80 = 850",
		"[FAIL] latency +20% at every quantile (latency-plus-20) reverted within 300 canary requests at p95: p95 = 400",
		"[PASS] canary-faster promoted in ≥ 99.5% of seeds: 200/200 = 100.0%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	b.Reset()
	if RenderIssueTargets(&b, res, order, aa, nil) || !strings.Contains(b.String(), "no baseline") {
		t.Errorf("without a baseline:\n%s", b.String())
	}
}

func TestLoadBaseline(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	if err := os.WriteFile(good, []byte("# p80s\n\naa-identical 2330\nerror-rate-10x\t1338\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := LoadBaseline(good)
	if err != nil || len(b) != 2 || b["aa-identical"] != 2330 || b["error-rate-10x"] != 1338 {
		t.Fatalf("LoadBaseline = %v, %v", b, err)
	}
	for name, text := range map[string]string{"fields": "aa 1 2\n", "number": "aa many\n", "negative": "aa -3\n"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadBaseline(p); err == nil || !strings.Contains(err.Error(), ":1:") {
			t.Errorf("%s: error %v, want one naming line 1", name, err)
		}
	}
	if _, err := LoadBaseline(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing baseline must be an error")
	}
}

// A/A: sim's own, and changes both sides share at the same times; a change
// to one side only, or a different change, is not.
func TestIsAA(t *testing.T) {
	const head = "name: x\ntraffic: {rps: 20, maxDuration: 45m}\nstable: {errorRate: 0.001}\nexpect: promote\n"
	for _, tc := range []struct {
		name, changes string
		want          bool
	}{
		{"no changes", "", true},
		{"shared burst", "changes:\n- {at: 2m, for: 30s, target: canary, set: {errorRate: 0.03}}\n- {at: 2m, for: 30s, target: stable, set: {errorRate: 0.03}}\n", true},
		{"canary only", "changes:\n- {at: 2m, for: 30s, target: canary, set: {errorRate: 0.03}}\n", false},
		{"different height", "changes:\n- {at: 2m, for: 30s, target: canary, set: {errorRate: 0.03}}\n- {at: 2m, for: 30s, target: stable, set: {errorRate: 0.02}}\n", false},
		{"different time", "changes:\n- {at: 2m, for: 30s, target: canary, set: {errorRate: 0.03}}\n- {at: 3m, for: 30s, target: stable, set: {errorRate: 0.03}}\n", false},
	} {
		sc, err := sim.ParseScenario([]byte(head + tc.changes))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := IsAA(sc); got != tc.want {
			t.Errorf("%s: IsAA = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Blind spots a scenario covers are left out of the table.
func TestRenderBlindSpots(t *testing.T) {
	var b strings.Builder
	RenderBlindSpots(&b, nil)
	all := b.String()
	for _, s := range BlindSpots() {
		if s.Gate == "" || s.Class == "" || s.Why == "" {
			t.Errorf("incomplete blind spot %+v", s)
		}
		if !strings.Contains(all, s.Class) {
			t.Errorf("with no scenarios, %q is not listed", s.Class)
		}
	}
	b.Reset()
	RenderBlindSpots(&b, []string{"latency-tail"})
	if strings.Contains(b.String(), "regression in a segment") || !strings.Contains(b.String(), "TPOT-only regression") {
		t.Errorf("latency-tail covers the segment class only:\n%s", b.String())
	}
}
