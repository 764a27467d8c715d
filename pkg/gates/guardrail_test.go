package gates

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
	"github.com/canarybot/canarybot/pkg/sim"
)

// laggedWorld simulates a scenario of testdata/feedback: stable alone for
// 15 minutes, then the canary at 10%, 25% and 50%, ten minutes each.
func laggedWorld(t *testing.T, scenario string) (*sim.World, time.Time) {
	t.Helper()
	sc, err := sim.LoadScenario("testdata/feedback/" + scenario + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	w, err := sim.NewWorld(sc, 11, sim.Epoch())
	if err != nil {
		t.Fatal(err)
	}
	start := sim.Epoch().Add(15 * time.Minute)
	for i, weight := range []int{10, 25, 50} {
		w.ScheduleWeight(start.Add(time.Duration(i)*10*time.Minute), weight)
	}
	return w, start
}

// guardrailGate is a confirm-mode judge over the errors metric and one
// guardrail, decoded, defaulted and validated as a plan's would be.
func guardrailGate(t *testing.T, g string) canary.GateSpec {
	t.Helper()
	plan := `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: qwen}
spec:
  model: {name: qwen, source: {static: {uri: "oci://r/qwen@sha256:` + strings.Repeat("a", 64) + `"}}}
  traffic: {mode: kserve, kserve: {inferenceService: qwen}}
  overlay: apps/qwen
  argocd: {application: qwen}
  signals:
    preset: vllm
    stable: {role: stable}
    canary: {role: canary}
    metrics: {feedback: 'labels_total', feedbackCorrect: 'labels_total{correct="true"}'}
  gates:
  - name: quality
    judge:
      metrics: [errors]
      guardrails:
      - ` + g + `
  steps:
  - setWeight: 10
  - analysis: {gates: [quality]}
`
	p, err := canary.ParsePlan([]byte(plan))
	if err != nil {
		t.Fatal(err)
	}
	return p.Spec.Gates[0]
}

// watchGuardrail evaluates the gate every 30 s of a 35-minute rollout,
// through weights 10%, 25% and 50%, and returns the guardrail's first
// Failed verdict, or else its last one.
func watchGuardrail(t *testing.T, gate canary.GateSpec, w *sim.World, start time.Time) metricVerdict {
	t.Helper()
	if err := w.Advance(int((50 * time.Minute) / time.Second)); err != nil {
		t.Fatal(err)
	}
	j := gate.Judge
	shares := alphaShares(append(append([]string{}, j.Metrics...), guardrailNames(j)...))
	var last metricVerdict
	for now := start.Add(30 * time.Second); !now.After(start.Add(35 * time.Minute)); now = now.Add(30 * time.Second) {
		s, err := w.Read(context.Background(), start.Add(-DefaultLookback), now, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		first, ok := firstCanaryTraffic(s, start)
		if !ok {
			continue
		}
		last = guardrails(j, s, first.Add(j.Warmup.Duration), shares, len(j.Guardrails)+1)[0]
		if last.verdict == canary.VerdictFailed {
			return last
		}
	}
	return last
}

// TestGuardrailDelayedLabels: labels arriving five minutes late do not
// bias the guardrail. Under A/A it never fails, whether total counts labels
// (labelled-correct over labelled) or requests (correct over requests,
// paired with labelDelay); a canary answering 80% right against 90% fails
// both ways. Without labelDelay, correct-over-requests flags the identical
// canary: its newest requests, more of them at every weight step, have no
// labels yet.
func TestGuardrailDelayedLabels(t *testing.T) {
	const (
		labelled = "{name: correct, success: feedbackCorrect, total: feedback, totalAtLabel: true, labelDelay: 5m}"
		requests = "{name: correct, success: feedbackCorrect, total: requests, labelDelay: 5m}"
		naive    = "{name: correct, success: feedbackCorrect, total: requests}"
	)
	for _, tc := range []struct {
		scenario, guardrail string
		want                canary.Verdict
	}{
		{"aa-lagged-labels", labelled, canary.VerdictSuccessful},
		{"aa-lagged-labels", requests, canary.VerdictSuccessful},
		{"worse-lagged-labels", labelled, canary.VerdictFailed},
		{"worse-lagged-labels", requests, canary.VerdictFailed},
		{"aa-lagged-labels", naive, canary.VerdictFailed},
	} {
		t.Run(tc.scenario+" "+tc.guardrail, func(t *testing.T) {
			// Margins wide enough for 35 minutes at 20 rps to conclude.
			g := strings.TrimSuffix(tc.guardrail, "}") + ", promoteMargin: 0.05, rollbackMargin: 0.08}"
			w, start := laggedWorld(t, tc.scenario)
			got := watchGuardrail(t, guardrailGate(t, g), w, start)
			if got.verdict != tc.want {
				t.Fatalf("verdict %s (%s), want %s", got.verdict, got.detail, tc.want)
			}
		})
	}
}

// TestGuardrailThroughJudge: the judge gate reads guardrail counters from
// the source and fails on a worse canary, naming the guardrail.
func TestGuardrailThroughJudge(t *testing.T) {
	w, start := laggedWorld(t, "worse-lagged-labels")
	if err := w.Advance(int((50 * time.Minute) / time.Second)); err != nil {
		t.Fatal(err)
	}
	gate := guardrailGate(t, "{name: correct, success: feedbackCorrect, total: feedback, totalAtLabel: true, labelDelay: 5m}")
	r, _ := runJudge(t, gate, w, start, 35*time.Minute)
	if r.Verdict != canary.VerdictFailed || r.Value != "correct" || !strings.Contains(r.Reason, "feedbackCorrect/feedback") {
		t.Fatalf("verdict %s on %q (%s); want Failed on the guardrail", r.Verdict, r.Value, r.Reason)
	}
}

// TestGuardrailCountersFromPrometheusNames: keys of signals.metrics that are
// not signals of their own are the guardrails' counters.
func TestGuardrailCountersFromPrometheusNames(t *testing.T) {
	names := PresetMetrics(canary.PresetVLLM)
	names["conversions"] = "shop_conversions_total"
	names["shown"] = "suggestions_shown_total"
	got := customCounters(names)
	if strings.Join(got, ",") != "conversions,shown" {
		t.Fatalf("custom counters %v; want conversions, shown", got)
	}
	iv := &signals.Interval{Requests: [2]float64{5, 6}, Counters: map[string][2]float64{"shown": {1, 2}}}
	if counterPair(iv, "requests") != [2]float64{5, 6} || counterPair(iv, "shown") != [2]float64{1, 2} {
		t.Fatal("counterPair reads the wrong counters")
	}
}

// TestGuardrailSelectorsValidated: a guardrail counter is spliced into
// PromQL, so it must be a plain series selector.
func TestGuardrailSelectorsValidated(t *testing.T) {
	gate := guardrailGate(t, "{name: correct, success: feedbackCorrect, total: feedback, totalAtLabel: true}")
	plan := &canary.CanaryPlan{Spec: canary.PlanSpec{Signals: gate.Signals, Gates: []canary.GateSpec{gate}}}
	if err := ValidatePlanQueries(plan); err != nil {
		t.Fatal(err)
	}
	gate.Signals.Metrics["feedback"] = `labels_total[5m])) or vector(1) #`
	err := ValidatePlanQueries(plan)
	if err == nil || !strings.Contains(err.Error(), "spec.signals.metrics.feedback: not a series selector") {
		t.Fatalf("err %v; want the injected selector refused with its path", err)
	}
}
