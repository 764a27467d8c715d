package promreplay

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/signals"
	"github.com/canarybot/canarybot/pkg/sim"
)

// sharedScenarios is the workspace's scenario folder, copied into the
// repository, relative to this package.
const sharedScenarios = "../../../bench/scenarios/shared"

// ownScenarios are canarybot's scenarios beside the shared ones.
const ownScenarios = "../../../bench/scenarios"

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// benchPlan is the default decision policy `canarybot simulate` runs.
const benchPlan = "../../../bench/plans/judge.yaml"

// testGates wires the gates as `canarybot simulate` does: every signal
// gate type over src.
func testGates(log *slog.Logger) func(signals.Source) canary.GateEvaluator {
	return func(src signals.Source) canary.GateEvaluator {
		sourceFor := func(*canary.SignalsSpec) (signals.Source, error) { return src, nil }
		return gates.ForSignals(sourceFor, gates.NewThreshold(nil, log, gates.WithSignals(sourceFor)))
	}
}

func loadScenarios(t *testing.T, names ...string) []*sim.Scenario {
	t.Helper()
	var out []*sim.Scenario
	for _, n := range names {
		path := filepath.Join(sharedScenarios, n+".yaml")
		if own := filepath.Join(ownScenarios, n+".yaml"); fileExists(own) {
			path = own
		}
		sc, err := sim.LoadScenario(path)
		if err != nil {
			t.Fatalf("load scenario %s (the shared scenarios belong at %s): %v", n, sharedScenarios, err)
		}
		out = append(out, sc)
	}
	return out
}

// TestMemoryAndPrometheusReachTheSameDecisions records each scenario in
// memory, backfills it into the real Prometheus with the real promtool,
// replays it with the judge plan's gates reading Prometheus, and checks
// that both paths reach the same outcome through the same gate, on the
// same traffic. It fails, with install instructions, when prometheus or
// promtool is missing.
func TestMemoryAndPrometheusReachTheSameDecisions(t *testing.T) {
	plan, err := os.ReadFile(benchPlan)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	start := time.Now()
	runs, err := RunMany(t.Context(), Options{
		Config: sim.Config{PlanYAML: plan, Gates: testGates(log), Logger: log},
		Scenarios: loadScenarios(t, "aa-identical", "latency-plus-40", "error-rate-10x", "gpu-xid", "gpu-memory-creep",
			"ttft-regression", "kv-cache-pressure"),
		Seeds:       []uint64{1, 2},
		Parallelism: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d runs through memory and Prometheus in %s", len(runs), time.Since(start).Round(time.Millisecond))
	for _, r := range runs {
		m, p := r.Memory, r.Replay
		t.Logf("%-18s seed %d  memory %-7s %-10s after %5.0fs  prometheus %-7s %-10s after %5.0fs",
			m.Scenario, m.Seed, m.Outcome, orDash(m.DecidingGate), m.DecidedAfterSeconds,
			p.Outcome, orDash(p.DecidingGate), p.DecidedAfterSeconds)
		if m.Outcome != p.Outcome || m.DecidingGate != p.DecidingGate {
			t.Errorf("%s seed %d: memory %s (gate %q, %s) but prometheus %s (gate %q, %s)", m.Scenario, m.Seed,
				m.Outcome, m.DecidingGate, m.Reason, p.Outcome, p.DecidingGate, p.Reason)
		}
		if m.Outcome == sim.OutcomeTimeout {
			t.Errorf("%s seed %d: the in-memory run timed out (%s); pick scenarios that decide", m.Scenario, m.Seed, m.Reason)
		}
		if r.Diverged != nil {
			t.Errorf("%s seed %d: %v", m.Scenario, m.Seed, r.Diverged)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
