package main

import (
	"strings"
	"testing"
)

func TestSimulateRefusesBadMetricsPath(t *testing.T) {
	plan, dir := simFixtures(t)
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unknown path":    {[]string{"--metrics", "influx"}, `--metrics must be memory or prometheus, got "influx"`},
		"plan no signals": {[]string{"--metrics", "prometheus"}, "the plan needs spec.signals"},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"simulate", "--plan", plan, "--scenario", dir, "--seeds", "1"}, tc.args...)
			if out, _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
				t.Errorf("err = %v, stdout %q; want an error containing %q and no output", err, out, tc.want)
			}
		})
	}
}

// TestSimulateThroughPrometheusPrintsWhatMemoryDoes runs the bench plan on
// two scenarios through the real promtool and Prometheus: the replay's
// lines are those of the in-memory run.
func TestSimulateThroughPrometheusPrintsWhatMemoryDoes(t *testing.T) {
	args := []string{"simulate", "--plan", "../../bench/plans/judge.yaml", "--seeds", "1",
		"--scenario", "../../bench/scenarios/shared/latency-plus-40.yaml", "--scenario", "../../bench/scenarios/shared/kv-cache-pressure.yaml"}
	mem, _, err := run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	prom, stderr, err := run(t, append(args, "--metrics", "prometheus")...)
	if err != nil {
		t.Fatal(err)
	}
	if prom != mem || !strings.Contains(prom, "revert") {
		t.Errorf("through prometheus:\n%s\nin memory:\n%s", prom, mem)
	}
	if strings.Contains(stderr, "decided differently") {
		t.Errorf("stderr: %s", stderr)
	}
}
