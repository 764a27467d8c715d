package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/internal/promtooltest"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/sim/promreplay"
)

// exampleScenarios are the A/A and the bad scenario each preset's examples
// roll out on (bench/scenarios/examples/README.md).
var exampleScenarios = map[string][2]string{
	canary.PresetVLLM:   {"../../bench/scenarios/shared/aa-identical.yaml", "../../bench/scenarios/examples/llm-errors-10x.yaml"},
	canary.PresetKServe: {"../../bench/scenarios/examples/tabular-aa.yaml", "../../bench/scenarios/examples/tabular-errors-10x.yaml"},
}

// guardrailScenario is the bad scenario a plan with judge guardrails
// must also revert: the canary's labelled answers are worse, and nothing
// else is.
const guardrailScenario = "../../bench/scenarios/examples/tabular-labels-worse.yaml"

// TestExamplesSimulate rolls every plan in examples/ out with `canarybot
// simulate` on its preset's A/A scenario, which it must promote, and its
// bad one, which it must revert, on two seeds each; a plan with judge
// guardrails must revert guardrailScenario too. A plan with a PromQL
// threshold gate runs through the real promtool and Prometheus
// (--metrics prometheus), the others in memory.
func TestExamplesSimulate(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v, %d files", err, len(files))
	}
	for _, file := range files {
		if isGateTemplates(t, file) {
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			plan := readExample(t, file)
			if plan.Spec.Signals == nil {
				t.Fatal("the example has no spec.signals: every example reads a preset")
			}
			if !hasJudge(plan) {
				t.Error("the example has no judge gate")
			}
			scs, ok := exampleScenarios[plan.Spec.Signals.Preset]
			if !ok {
				t.Fatalf("no scenarios for preset %q", plan.Spec.Signals.Preset)
			}
			args := []string{"simulate", "--plan", file, "--seeds", "2", "--json", "--scenario", scs[0], "--scenario", scs[1]}
			want := map[string]string{scenarioName(t, scs[0]): "promote", scenarioName(t, scs[1]): "revert"}
			if hasGuardrails(plan) {
				args = append(args, "--scenario", guardrailScenario)
				want[scenarioName(t, guardrailScenario)] = "revert"
			}
			if hasPromQL(plan) {
				promtooltest.Path(t) // Debian's prometheus package has prometheus too
				args = append(args, "--metrics", "prometheus")
			}
			out, stderr, err := run(t, args...)
			if err != nil {
				t.Fatalf("simulate: %v\n%s", err, stderr)
			}
			checkExampleRuns(t, out, want)
			if strings.Contains(stderr, "decided differently") {
				t.Errorf("the replay through Prometheus decided differently from memory:\n%s", stderr)
			}
		})
	}
}

// TestSimulateInMemoryNamesPrometheusForPromQL: in memory a PromQL
// threshold gate is refused up front, with the way to run it.
func TestSimulateInMemoryNamesPrometheusForPromQL(t *testing.T) {
	out, _, err := run(t, "simulate", "--plan", "../../examples/qwen-gateway.yaml", "--seeds", "1",
		"--scenario", "../../bench/scenarios/shared/aa-identical.yaml")
	if err == nil || !strings.Contains(err.Error(), "gate ttft-slo queries PromQL") ||
		!strings.Contains(err.Error(), "--metrics prometheus") || out != "" {
		t.Errorf("err = %v, stdout %q; want the PromQL gate named, with --metrics prometheus", err, out)
	}
}

// readExample reads an example plan, with the GateTemplates beside it.
func readExample(t *testing.T, file string) *canary.CanaryPlan {
	t.Helper()
	plan, _, err := readPlanFile(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// isGateTemplates reports whether the example file holds GateTemplates.
func isGateTemplates(t *testing.T, file string) bool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), "\nkind: "+canary.KindGateTemplate+"\n")
}

func hasJudge(plan *canary.CanaryPlan) bool {
	for _, g := range plan.Spec.Gates {
		if g.Judge != nil {
			return true
		}
	}
	return false
}

func hasGuardrails(plan *canary.CanaryPlan) bool {
	for _, g := range plan.Spec.Gates {
		if g.Judge != nil && len(g.Judge.Guardrails) > 0 {
			return true
		}
	}
	return false
}

func hasPromQL(plan *canary.CanaryPlan) bool {
	for _, g := range plan.Spec.Gates {
		if promreplay.IsPromQL(g) {
			return true
		}
	}
	return false
}

func scenarioName(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if name, ok := strings.CutPrefix(line, "name:"); ok {
			return strings.TrimSpace(name)
		}
	}
	t.Fatalf("%s: no name", file)
	return ""
}

// checkExampleRuns wants two runs of every scenario in want, each ending
// in the outcome want gives it.
func checkExampleRuns(t *testing.T, out string, want map[string]string) {
	t.Helper()
	runs := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r simRun
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		runs[r.Scenario]++
		if w, ok := want[r.Scenario]; !ok || r.Outcome != w {
			t.Errorf("%s seed %d: %s after %.0fs (gate %q), want %s", r.Scenario, r.Seed, r.Outcome,
				r.DecidedAfterSeconds, r.DecidingGate, w)
		}
	}
	for s := range want {
		if runs[s] != 2 {
			t.Errorf("%s: %d runs, want 2", s, runs[s])
		}
	}
}
