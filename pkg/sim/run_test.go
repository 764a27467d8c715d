package sim

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// testPlan is a valid plan whose judge gate the test evaluator below
// stands in for.
const testPlan = `
apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: sim}
spec:
  model: {name: m, source: {oci: {repository: sim.local/model}}}
  traffic: {mode: kserve, kserve: {inferenceService: m}}
  overlay: overlays/m
  argocd: {application: m}
  signals: {preset: vllm, stable: {role: stable}, canary: {role: canary}}
  steps:
  - setWeight: 20
  - analysis: {gates: [error-ratio]}
  - setWeight: 50
  - analysis: {gates: [error-ratio]}
  - setWeight: 100
  gates:
  - name: error-ratio
    judge: {}
`

// ratioGate is a test-only evaluator over signals: it fails when the
// canary's error ratio since the rollout started is over 5× stable's
// (stable read from 10 minutes before) once the canary served 500
// requests, and succeeds once the step served 2000 canary requests.
type ratioGate struct {
	src   signals.Source
	never bool // stays Running, for timeouts
}

func (g ratioGate) Evaluate(ctx context.Context, gate canary.GateSpec, w canary.Window) (canary.GateResult, error) {
	s, err := g.src.Read(ctx, w.RolloutStart.Add(-10*time.Minute), w.Now, 10*time.Second)
	if err != nil {
		return canary.GateResult{}, err
	}
	var req, errs [2]float64
	step := 0.0
	for _, iv := range s.Intervals {
		if iv.NoData {
			continue
		}
		req[0], errs[0] = req[0]+iv.Requests[0], errs[0]+iv.Errors[0]
		if !iv.Start.Before(w.RolloutStart) {
			req[1], errs[1] = req[1]+iv.Requests[1], errs[1]+iv.Errors[1]
		}
		if !iv.Start.Before(w.Start) {
			step += iv.Requests[1]
		}
	}
	r := canary.GateResult{Gate: gate.Name, Verdict: canary.VerdictRunning, NextAt: w.Now.Add(10 * time.Second),
		Value: fmt.Sprintf("%.0f/%.0f vs %.0f/%.0f", errs[1], req[1], errs[0], req[0])}
	switch {
	case g.never:
	case req[1] >= 500 && errs[1]/req[1] > 5*errs[0]/req[0]:
		r.Verdict, r.Reason = canary.VerdictFailed, "canary error ratio over 5× stable's"
	case step >= 2000:
		r.Verdict, r.Reason = canary.VerdictSuccessful, "2000 canary requests in the step"
	}
	return r, nil
}

func testGates(src signals.Source) canary.GateEvaluator { return ratioGate{src: src} }

func sharedScenario(t testing.TB, name string) *Scenario {
	t.Helper()
	sc, err := LoadScenario(filepath.Join(sharedDir(t), name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestRunEndToEnd(t *testing.T) {
	for _, name := range []string{"aa-identical", "error-rate-10x"} {
		sc := sharedScenario(t, name)
		for seed := uint64(1); seed <= 4; seed++ {
			res, err := Run(context.Background(), Config{PlanYAML: []byte(testPlan), Scenario: sc, Seed: seed, Gates: testGates})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Correct || res.Outcome != sc.Expect || res.Expected != sc.Expect {
				t.Errorf("%s seed %d: %+v", name, seed, res)
				continue
			}
			if res.CanaryStart != Epoch().Add(DefaultWarmup) {
				t.Errorf("%s: canary started at %s, want after the 10m warm-up", name, res.CanaryStart)
			}
			switch res.Outcome {
			case OutcomePromote:
				// Two analysis steps of 2000 canary requests each, at 4 and 10 rps.
				if res.CanaryRequests < 4000 || res.DecidedAfterSeconds < 600 || res.DecidingGate != "" {
					t.Errorf("%s seed %d promoted too early: %+v", name, seed, res)
				}
			case OutcomeRevert:
				if res.CanaryRequests < 500 || res.CanaryRequests > 4000 || res.DecidingGate != "error-ratio" ||
					!strings.Contains(res.Reason, "5×") {
					t.Errorf("%s seed %d revert: %+v", name, seed, res)
				}
			}
		}
	}
}

func TestRunDeterministic(t *testing.T) {
	sc := sharedScenario(t, "error-rate-10x")
	run := func(seed uint64) (Result, string) {
		var src signals.Source
		res, err := Run(context.Background(), Config{PlanYAML: []byte(testPlan), Scenario: sc, Seed: seed,
			Gates: func(s signals.Source) canary.GateEvaluator { src = s; return testGates(s) }})
		if err != nil {
			t.Fatal(err)
		}
		s, err := src.Read(context.Background(), Epoch(), res.CanaryStart.Add(time.Duration(res.DecidedAfterSeconds)*time.Second), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return res, fmt.Sprint(*s)
	}
	r1, s1 := run(9)
	r2, s2 := run(9)
	if r1 != r2 {
		t.Errorf("same seed, different results:\n%+v\n%+v", r1, r2)
	}
	if s1 != s2 {
		t.Error("same seed, different series")
	}
	if r3, s3 := run(10); r3 == r1 || s3 == s1 {
		t.Error("a different seed gave the same run")
	}
}

func TestRunTimeoutAndSyncDelay(t *testing.T) {
	sc := mustScenario(t, "name: slow\ntraffic: {rps: 10, maxDuration: 3m}\nstable: {}\nexpect: promote\n")
	res, err := Run(context.Background(), Config{
		PlanYAML: []byte(testPlan), Scenario: sc, Seed: 1, Warmup: -1, SyncDelay: 30 * time.Second,
		Gates: func(src signals.Source) canary.GateEvaluator { return ratioGate{src: src, never: true} },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeTimeout || res.Correct || res.DecidedAfterSeconds != 180 {
		t.Errorf("want a timeout 3m after the canary's first traffic: %+v", res)
	}
	if want := Epoch().Add(30 * time.Second); !res.CanaryStart.Equal(want) {
		t.Errorf("with a 30s sync delay and no warm-up the canary started at %s, want %s", res.CanaryStart, want)
	}
	if !strings.Contains(res.Reason, "analysis running") {
		t.Errorf("reason %q", res.Reason)
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	sc := mustScenario(t, "name: x\ntraffic: {rps: 1, maxDuration: 1m}\nstable: {}\nexpect: promote\n")
	cases := map[string]Config{
		"no plan":     {Scenario: sc, Gates: testGates},
		"bad plan":    {PlanYAML: []byte("kind: Nope\n"), Scenario: sc, Gates: testGates},
		"no scenario": {PlanYAML: []byte(testPlan), Gates: testGates},
		"no gates":    {PlanYAML: []byte(testPlan), Scenario: sc},
	}
	for name, cfg := range cases {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A gate type the evaluator does not know is terminal, not a timeout.
	_, err := Run(context.Background(), Config{PlanYAML: []byte(testPlan), Scenario: sc,
		Gates: func(signals.Source) canary.GateEvaluator { return failing{} }})
	if err == nil || !strings.Contains(err.Error(), "no evaluator") {
		t.Errorf("terminal gate error: %v", err)
	}
}

type failing struct{}

func (failing) Evaluate(context.Context, canary.GateSpec, canary.Window) (canary.GateResult, error) {
	return canary.GateResult{}, canary.Terminalf("no evaluator")
}

func TestRunManyOrdersResults(t *testing.T) {
	scs := []*Scenario{sharedScenario(t, "error-rate-10x"), sharedScenario(t, "aa-identical")}
	seeds := []uint64{3, 1, 2}
	cfg := Config{PlanYAML: []byte(testPlan), Gates: testGates}
	got, err := RunMany(context.Background(), cfg, scs, seeds, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("%d results", len(got))
	}
	for i, r := range got {
		c := cfg
		c.Scenario, c.Seed = scs[i/3], seeds[i%3]
		want, err := Run(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if r != want {
			t.Errorf("result %d = %+v, want %+v", i, r, want)
		}
	}
	sum := Summarize(got)
	if len(sum) != 2 || sum[0].Scenario != "error-rate-10x" || sum[0].Runs != 3 || sum[0].Correct != 3 {
		t.Errorf("summary %+v", sum)
	}
}

func TestPercentile(t *testing.T) {
	xs := []int64{50, 10, 40, 20, 30}
	if m, p := percentile(xs, 0.5), percentile(xs, 0.8); m != 30 || p != 40 {
		t.Errorf("median %d p80 %d, want 30 and 40", m, p)
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("empty percentile")
	}
}

func BenchmarkRun(b *testing.B) {
	for _, name := range []string{"aa-identical", "error-rate-10x"} {
		sc := sharedScenario(b, name)
		b.Run(name, func(b *testing.B) {
			seed := uint64(0)
			for b.Loop() {
				seed++
				if _, err := Run(context.Background(), Config{PlanYAML: []byte(testPlan), Scenario: sc, Seed: seed, Gates: testGates}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type flaky struct{}

func (flaky) Evaluate(context.Context, canary.GateSpec, canary.Window) (canary.GateResult, error) {
	return canary.GateResult{}, fmt.Errorf("backend unreachable")
}

func TestRunTimeoutReportsGateErrors(t *testing.T) {
	sc := mustScenario(t, "name: x\ntraffic: {rps: 1, maxDuration: 2m}\nstable: {}\nexpect: promote\n")
	res, err := Run(context.Background(), Config{PlanYAML: []byte(testPlan), Scenario: sc, Warmup: -1,
		Gates: func(signals.Source) canary.GateEvaluator { return flaky{} }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeTimeout || !strings.Contains(res.Reason, "last gate error: backend unreachable") {
		t.Errorf("%+v", res)
	}
}

func TestRunAcceptsAPlanStruct(t *testing.T) {
	plan, err := canary.ParsePlan([]byte(testPlan))
	if err != nil {
		t.Fatal(err)
	}
	sc := sharedScenario(t, "error-rate-10x")
	fromStruct, err := Run(context.Background(), Config{Plan: plan, Scenario: sc, Seed: 4, Gates: testGates})
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := Run(context.Background(), Config{PlanYAML: []byte(testPlan), Scenario: sc, Seed: 4, Gates: testGates})
	if err != nil {
		t.Fatal(err)
	}
	if fromStruct != fromYAML {
		t.Errorf("plan struct %+v, plan YAML %+v", fromStruct, fromYAML)
	}
}
