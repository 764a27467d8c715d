package sim

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sharedScenarios is the workspace's scenario folder, copied into the
// repository, relative to this package.
const sharedScenarios = "../../bench/scenarios/shared"

func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(sharedScenarios)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("the shared scenarios are missing: want a directory at %s (%s from pkg/sim): %v", dir, sharedScenarios, err)
	}
	return dir
}

func TestSharedScenariosParse(t *testing.T) {
	dir := sharedDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) == 0 {
		t.Fatalf("no *.yaml files in %s", dir)
	}
	scs, err := LoadScenarios(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) != len(files) {
		t.Fatalf("parsed %d scenarios from %d files", len(scs), len(files))
	}
	byName := map[string]*Scenario{}
	for _, sc := range scs {
		byName[sc.Name] = sc
		if sc.Traffic.RPS <= 0 || sc.Traffic.MaxDuration.Duration <= 0 {
			t.Errorf("%s: traffic %+v", sc.Name, sc.Traffic)
		}
		// Every scenario must be runnable: both sides resolve.
		if _, err := NewWorld(sc, 1, Epoch()); err != nil {
			t.Errorf("%s: %v", sc.Name, err)
		}
	}
	if sc := byName["warmup-spike"]; sc != nil {
		c := sc.Changes[0]
		if c.At.Duration != 0 || c.For.Duration != 90*time.Second || c.Target != TargetCanary ||
			*c.Set.Latency.MedianSeconds != 0.9 || c.Set.Latency.Distribution != DistLognormal {
			t.Errorf("warmup-spike change = %+v", c)
		}
	}
	if sc := byName["aa-identical"]; sc != nil {
		base := sc.CanaryBase()
		if *base.ErrorRate != *sc.Stable.ErrorRate || *base.Latency.MedianSeconds != 0.3 || base.GPU == nil {
			t.Errorf("an empty canary must take stable's fields: %+v", base)
		}
	}
}

func TestParseScenarioErrors(t *testing.T) {
	const head = "name: x\ntraffic: {rps: 10, maxDuration: 30m}\nexpect: promote\n"
	const stable = "stable: {errorRate: 0.001, latency: {distribution: lognormal, medianSeconds: 0.3, sigma: 0.5}}\n"
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field with its path", head + stable +
			"changes: [{at: 1m, target: canary, set: {latency: {medain: 0.4}}}]\n",
			[]string{"changes[0].set.latency.medain: unknown field"}},
		{"unknown top-level field", head + stable + "expected: revert\n", []string{"expected: unknown field"}},
		{"bad duration", "name: x\ntraffic: {rps: 10, maxDuration: 45 minutes}\nexpect: promote\n" + stable,
			[]string{"traffic.maxDuration: bad duration \"45 minutes\""}},
		{"duration without unit", head + stable + "changes: [{at: 90, target: canary, set: {errorRate: 0.1}}]\n",
			[]string{"changes[0].at: duration 90 has no unit"}},
		{"negative rate", head + "stable: {errorRate: -0.1}\n", []string{"stable.errorRate: must be in [0, 1], got -0.1"}},
		{"rate above one", head + stable + "canary: {kvCacheUsage: 1.5}\n", []string{"canary.kvCacheUsage: must be in [0, 1]"}},
		{"unknown target", head + stable + "changes: [{at: 1m, target: canry, set: {errorRate: 0.1}}]\n",
			[]string{`changes[0].target: unknown target "canry" (want canary, stable, metrics)`}},
		{"zero rps", "name: x\ntraffic: {rps: 0, maxDuration: 30m}\nexpect: promote\n" + stable,
			[]string{"traffic.rps: must be a positive number"}},
		{"bad expect", "name: x\ntraffic: {rps: 1, maxDuration: 30m}\nexpect: rollback\n" + stable,
			[]string{`expect: must be promote or revert, got "rollback"`}},
		{"unknown distribution", head + "stable: {latency: {distribution: gamma, medianSeconds: 1, sigma: 1}}\n",
			[]string{`stable.latency.distribution: unknown distribution "gamma"`}},
		{"negative median", head + "stable: {latency: {medianSeconds: -1, sigma: 1}}\n",
			[]string{"stable.latency.medianSeconds: must be positive"}},
		{"empty mixture", head + "stable: {latency: {distribution: mixture}}\n",
			[]string{"stable.latency.components: a mixture needs at least one component"}},
		{"lognormal without sigma", head + "stable: {latency: {medianSeconds: 0.3}}\n",
			[]string{"stable: latency: lognormal needs medianSeconds and sigma"}},
		{"available outside metrics", head + stable + "canary: {available: false}\n",
			[]string{"canary.available: is only valid in a change with target metrics"}},
		{"metrics change sets only available", head + stable +
			"changes: [{at: 1m, target: metrics, set: {available: false, errorRate: 0.5}}]\n",
			[]string{"changes[0].set: a metrics change sets only available"}},
		{"change without set", head + stable + "changes: [{at: 1m, target: canary}]\n", []string{"changes[0].set: is required"}},
		{"negative for", head + stable + "changes: [{at: 1m, for: -1m, target: canary, set: {errorRate: 0.1}}]\n",
			[]string{"changes[0].for: must be positive"}},
		{"duplicate key", head + stable + "stable: {}\n", []string{"decode"}},
		{"empty document", "", []string{"want a YAML mapping"}},
		{"every problem at once", "name: x\ntraffic: {rps: -1, maxDuration: 30m}\nexpect: promote\nstable: {errorRate: 2, queueDepth: -1}\n",
			[]string{"traffic.rps", "stable.errorRate", "stable.queueDepth"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := ParseScenario([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("parsed %+v, want an error", sc)
			}
			if !errors.Is(err, ErrInvalidScenario) {
				t.Errorf("error %v does not wrap ErrInvalidScenario", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseScenarioInfersAndMerges(t *testing.T) {
	sc, err := ParseScenario([]byte(`
name: merge
traffic: {rps: 5, maxDuration: 10m}
stable:
  errorRate: 0.01
  latency: {medianSeconds: 0.3, sigma: 0.5}
  gpu: {memoryUsedFraction: 0.5, temperatureC: 60}
canary:
  latency: {components: [{weight: 3, medianSeconds: 0.2, sigma: 0.1}, {weight: 1, medianSeconds: 2, sigma: 0.1}]}
changes:
  - {at: 0, target: canary, set: {gpu: {temperatureC: 80}}}
expect: revert
`))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Stable.Latency.Distribution != DistLognormal || sc.Canary.Latency.Distribution != DistMixture {
		t.Errorf("inferred distributions %q, %q", sc.Stable.Latency.Distribution, sc.Canary.Latency.Distribution)
	}
	base := sc.CanaryBase()
	p, err := resolve(merge(base, *sc.Changes[0].Set))
	if err != nil {
		t.Fatal(err)
	}
	if p.errorRate != 0.01 || p.gpuMem != 0.5 || p.temp != 80 {
		t.Errorf("set must replace field by field: errorRate %v gpuMem %v temp %v", p.errorRate, p.gpuMem, p.temp)
	}
	if len(p.latency.cum) != 2 || p.latency.cum[0] != 0.75 || p.latency.median[1] != 2 {
		t.Errorf("mixture resolved to %+v", p.latency)
	}
	if *sc.Stable.GPU.TemperatureC != 60 {
		t.Error("merging changed the stable behaviour")
	}
}

func TestLoadScenariosRefusesDuplicatesAndEmptyDirs(t *testing.T) {
	dir := t.TempDir()
	body := "name: same\ntraffic: {rps: 1, maxDuration: 1m}\nstable: {}\nexpect: promote\n"
	for _, f := range []string{"a.yaml", "b.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadScenarios(dir); err == nil || !strings.Contains(err.Error(), `name "same" is already used`) {
		t.Errorf("duplicate names: %v", err)
	}
	if _, err := LoadScenarios(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no *.yaml scenarios") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := LoadScenarios(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing file must fail")
	}
}

// A/A is told by a scenario's shape, not its name: bench runs its strict
// policy and its false-revert targets on every one.
func TestIsAA(t *testing.T) {
	const head = "name: x\ntraffic: {rps: 10, maxDuration: 30m}\n"
	const stable = "stable: {errorRate: 0.001, latency: {distribution: lognormal, medianSeconds: 0.3, sigma: 0.5}, gpu: {memoryUsedFraction: 0.5}}\n"
	for _, tc := range []struct {
		name, yaml string
		want       bool
	}{
		{"empty canary", head + stable + "expect: promote\n", true},
		{"canary repeats stable", head + stable + "canary: {errorRate: 0.001}\nexpect: promote\n", true},
		{"metrics outage only", head + stable + "changes: [{at: 5m, for: 1m, target: metrics, set: {available: false}}]\nexpect: promote\n", true},
		{"canary differs", head + stable + "canary: {errorRate: 0.002}\nexpect: promote\n", false},
		{"canary GPU differs", head + stable + "canary: {gpu: {memoryGrowthPerMinute: 0.01}}\nexpect: promote\n", false},
		{"a change to the canary", head + stable + "changes: [{at: 5m, target: canary, set: {errorRate: 0.5}}]\nexpect: promote\n", false},
		{"expects a revert", head + stable + "expect: revert\n", false},
	} {
		sc, err := ParseScenario([]byte(tc.yaml))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := sc.IsAA(); got != tc.want {
			t.Errorf("%s: IsAA = %v, want %v", tc.name, got, tc.want)
		}
	}
}
