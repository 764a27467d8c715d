package notify

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

var (
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v1 = canary.Artifact{URI: "oci://ghcr.io/acme/qwen@sha256:1111111111111111111111111111111111111111111111111111111111111111", Version: "1.0.0"}
	v2 = canary.Artifact{URI: "oci://ghcr.io/acme/qwen@sha256:2222222222222222222222222222222222222222222222222222222222222222", Version: "2.0.0"}
)

// testPlan's steps: 10%, an analysis, a pause until approved, 50%.
func testPlan(t *testing.T) *canary.CanaryPlan {
	t.Helper()
	p, err := canary.ParsePlan([]byte(`apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: qwen}
spec:
  model: {name: qwen, source: {oci: {repository: ghcr.io/acme/qwen}}}
  traffic: {mode: kserve, kserve: {inferenceService: qwen}}
  overlay: manifests/overlays/qwen
  argocd: {application: qwen}
  steps:
  - setWeight: 10
  - analysis: {gates: [latency]}
  - pause: {untilApproved: true}
  - setWeight: 50
  gates:
  - name: latency
    threshold: {query: up, successCondition: result < 1.2}
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func trailers(plan, step, action, artifact string) []canary.Trailer {
	var out []canary.Trailer
	for _, kv := range [][2]string{{canary.TrailerPlan, plan}, {canary.TrailerStep, step},
		{canary.TrailerAction, action}, {canary.TrailerArtifact, artifact}} {
		if kv[1] != "" {
			out = append(out, canary.Trailer{Key: kv[0], Value: kv[1]})
		}
	}
	return out
}

// state is the state a transition wrote, with its last history entry.
func state(phase string, step, weight int, cand canary.Artifact, reason, action string, histWeight int, gates ...canary.GateResult) *canary.RolloutState {
	st := canary.NewState("qwen", v1)
	st.Status.Phase, st.Status.StepIndex, st.Status.Weight, st.Status.Candidate = phase, step, weight, cand
	st.Status.Reason, st.Status.Gates = reason, gates
	st.Status.History = []canary.HistoryEntry{{At: t0, Action: action, Step: step, Weight: histWeight, Reason: reason}}
	return st
}

func TestDerive(t *testing.T) {
	plan := testPlan(t)
	failed := canary.GateResult{Gate: "latency", Verdict: canary.VerdictFailed, Value: "1.4588", Condition: "result < 1.2",
		Failed: 2, Reason: "2 of 2 measurements failed"}
	passed := canary.GateResult{Gate: "errors", Verdict: canary.VerdictSuccessful, Value: "0"}
	reverted := state(canary.PhaseReverted, 1, 0, canary.Artifact{},
		"gate latency failed: 2 of 2 measurements failed (limit 1): result 1.4588 did not meet successCondition: result < 1.2",
		"revert", 0, passed, failed)
	reverted.Status.Failed = []canary.Artifact{v2}
	promoted := state(canary.PhasePromoted, 4, 0, canary.Artifact{}, "weight 50% synced; all steps done", "promote", 100)
	promoted.Status.Stable = v2
	type want struct {
		id, typ      string
		step, weight int
		version      string
		gate         string
	}
	for _, tc := range []struct {
		name     string
		trailers []canary.Trailer
		st       *canary.RolloutState
		plan     *canary.CanaryPlan
		want     []want
	}{
		{"start", trailers("qwen", "0", "start", v2.URI), state(canary.PhaseProgressing, 0, 10, v2, "new artifact", "start", 10), plan,
			[]want{{"c1/started", canary.EventStarted, 0, 10, "2.0.0", ""}}},
		{"advance to an analysis", trailers("qwen", "1", "advance", v2.URI), state(canary.PhaseProgressing, 1, 10, v2, "synced", "advance", 10), plan,
			[]want{{"c1/advanced", canary.EventAdvanced, 1, 10, "2.0.0", ""}}},
		{"advance to a pause until approved", trailers("qwen", "2", "advance", v2.URI),
			state(canary.PhaseProgressing, 2, 10, v2, "gates passed", "advance", 10, passed), plan,
			[]want{{"c1/advanced", canary.EventAdvanced, 2, 10, "2.0.0", ""}, {"c1/awaitingApproval", canary.EventAwaitingApproval, 2, 10, "2.0.0", ""}}},
		{"the same without the plan: no approval event", trailers("qwen", "2", "advance", v2.URI),
			state(canary.PhaseProgressing, 2, 10, v2, "gates passed", "advance", 10), nil,
			[]want{{"c1/advanced", canary.EventAdvanced, 2, 10, "2.0.0", ""}}},
		{"hold names the inconclusive gate", trailers("qwen", "1", "hold", v2.URI),
			state(canary.PhasePaused, 1, 10, v2, "inconclusive", "hold", 10, passed,
				canary.GateResult{Gate: "judge", Verdict: canary.VerdictInconclusive}), plan,
			[]want{{"c1/held", canary.EventHeld, 1, 10, "2.0.0", "judge"}}},
		{"promote is at 100%", trailers("qwen", "4", "promote", v2.URI), promoted, plan,
			[]want{{"c1/promoted", canary.EventPromoted, 4, 100, "2.0.0", ""}}},
		{"revert names the gate of the reason", trailers("qwen", "1", "revert", v2.URI), reverted, plan,
			[]want{{"c1/reverted", canary.EventReverted, 1, 0, "2.0.0", "latency"}}},
		{"state unreadable: the trailers still tell", trailers("qwen", "3", "advance", v2.URI), nil, plan,
			[]want{{"c1/advanced", canary.EventAdvanced, 3, 0, "", ""}}},
		{"retry is no event", trailers("qwen", "0", canary.ActionRetry, v2.URI), reverted, plan, nil},
		{"a request is no event", []canary.Trailer{{Key: canary.TrailerPlan, Value: "qwen"}, {Key: "Canarybot-Request", Value: "promote"}}, nil, plan, nil},
		{"no plan trailer", trailers("", "0", "start", v2.URI), nil, plan, nil},
		{"a human commit", nil, nil, plan, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Derive(Commit{SHA: "c1", Time: t0, Trailers: tc.trailers}, tc.st, tc.plan)
			if len(got) != len(tc.want) {
				t.Fatalf("events %+v, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				e := got[i]
				if e.ID != w.id || e.Type != w.typ || e.Step != w.step || e.Weight != w.weight || e.Candidate.Version != w.version ||
					e.DecidingGate != w.gate || e.Plan != "qwen" || e.Commit != "c1" || !e.At.Equal(t0) {
					t.Errorf("event %d = %+v\nwant %+v", i, e, w)
				}
			}
		})
	}
	ev := Derive(Commit{SHA: "c9", Trailers: trailers("qwen", "1", "revert", v2.URI)}, reverted, plan)[0]
	if g, ok := ev.Gate(); !ok || g.Value != "1.4588" || g.Condition != "result < 1.2" || ev.Candidate.URI != v2.URI ||
		ev.Stable != v1 || !strings.HasPrefix(ev.Reason, "gate latency failed") {
		t.Errorf("revert evidence: gate %+v (%v), event %+v", g, ok, ev)
	}
}

func TestDecidingGate(t *testing.T) {
	g := func(name string, v canary.Verdict) canary.GateResult {
		return canary.GateResult{Gate: name, Verdict: v}
	}
	for _, tc := range []struct {
		reason string
		gates  []canary.GateResult
		want   string
	}{
		{"gate b failed: …", []canary.GateResult{g("a", canary.VerdictFailed), g("b", canary.VerdictFailed)}, "b"},
		{"background gate", []canary.GateResult{g("a", canary.VerdictSuccessful), g("b", canary.VerdictError), g("c", canary.VerdictFailed)}, "c"},
		{"", []canary.GateResult{g("a", canary.VerdictInconclusive), g("b", canary.VerdictError)}, "b"},
		{"sync failed", []canary.GateResult{g("a", canary.VerdictSuccessful)}, ""},
		{"aborted by alice", nil, ""},
	} {
		if got := decidingGate(tc.reason, tc.gates); got != tc.want {
			t.Errorf("decidingGate(%q, %v) = %q, want %q", tc.reason, tc.gates, got, tc.want)
		}
	}
}

func TestDeriveInvalid(t *testing.T) {
	head := Commit{SHA: "h2", Time: t0}
	p := func(path, name, msg string) canary.PlanProblem {
		return canary.PlanProblem{Path: path, Name: name, Err: errors.New(msg)}
	}
	before := []canary.PlanProblem{p("plans/old.yaml", "old", "still broken")}
	after := []canary.PlanProblem{
		p("plans/new.yaml", "new", "spec.steps[0].setWeight: want an integer\nspec.overlay: is required"),
		p("plans/old.yaml", "old", "broken differently"),
		{Path: "plans/two.yaml", Doc: 1, Name: "b", Err: errors.New("x")},
		{Path: "plans/two.yaml", Doc: 2, Name: "c", Err: errors.New("y")},
		p("plans/leak.yaml", "", "source: https://user:hunter2@registry.example/x"),
	}
	got := DeriveInvalid(head, before, after)
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
		if e.Type != canary.EventPlanInvalid || e.Commit != "h2" || !e.At.Equal(t0) {
			t.Errorf("event %+v", e)
		}
	}
	want := []string{"h2/planInvalid/plans/new.yaml", "h2/planInvalid/plans/two.yaml", "h2/planInvalid/plans/leak.yaml"}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	if e := got[0]; e.Plan != "new" || e.Path != "plans/new.yaml" || len(e.Errors) != 2 || e.Errors[1] != "spec.overlay: is required" {
		t.Errorf("new.yaml event %+v", e)
	}
	if strings.Contains(strings.Join(got[2].Errors, " "), "hunter2") {
		t.Errorf("a credential reached the event: %v", got[2].Errors)
	}
	if DeriveInvalid(head, after, after) != nil {
		t.Error("a plan invalid at the cursor too made an event")
	}
}

func TestShortDigest(t *testing.T) {
	for _, tc := range []struct {
		a    canary.Artifact
		want string
	}{
		{v2, "sha256:222222222222"},
		{canary.Artifact{URI: "models:/fraud/7", Version: "7"}, "7"},
		{canary.Artifact{URI: "s3://bucket/model?versionId=abc"}, "s3://bucket/model?versionId=abc"},
	} {
		if got := ShortDigest(tc.a); got != tc.want {
			t.Errorf("ShortDigest(%s) = %q, want %q", tc.a.URI, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	var got []time.Duration
	for n := 1; n <= 11; n++ {
		got = append(got, Backoff(n, time.Second, 5*time.Minute))
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute, 5 * time.Minute}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Backoff = %v, want %v", got, want)
	}
}
