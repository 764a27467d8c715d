package github

import (
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

const v2 = "oci://ghcr.io/acme/qwen@sha256:5f2b9c0d1e3a4b5c6d7e8f90123456789abcdef0123456789abcdef01234567"

func TestBranch(t *testing.T) {
	cases := map[string]string{
		v2:                                    "canarybot/qwen/5f2b9c0d1e3a",
		"models:/fraud/7":                     "canarybot/qwen/7",
		"s3://bucket/model.tar?versionId=a.b": "canarybot/qwen/a.b",
	}
	for art, want := range cases {
		got := Branch("qwen", art)
		if got != want {
			t.Errorf("Branch(%q) = %q, want %q", art, got, want)
		}
		if plan, ok := PlanOfBranch(got); !ok || plan != "qwen" {
			t.Errorf("PlanOfBranch(%q) = %q, %v", got, plan, ok)
		}
	}
	if _, ok := PlanOfBranch("feature/x"); ok {
		t.Error("a human branch was taken for canarybot's")
	}
}

func evidence() *canary.Change {
	w := 10
	plan := &canary.CanaryPlan{Metadata: canary.ObjectMeta{Name: "qwen"}, Spec: canary.PlanSpec{Steps: []canary.Step{
		{SetWeight: &w}, {Analysis: &canary.AnalysisStep{Gates: []string{"latency"}}},
		{Pause: &canary.PauseStep{UntilApproved: true}}, {SetWeight: intp(100)},
	}}}
	before := canary.NewState("qwen", canary.Artifact{URI: "oci://ghcr.io/acme/qwen@sha256:" + strings.Repeat("1", 64), Version: "v1"})
	before.Status.Phase, before.Status.StepIndex = canary.PhaseProgressing, 2
	before.Status.Gates = []canary.GateResult{{Gate: "latency", Verdict: canary.VerdictSuccessful, Query: "histogram_quantile(0.95, …)",
		Condition: "result < 1.2", Value: "1.04", Window: "step 12:00:00 → 12:05:00Z (5m0s)", Reason: "ratio 1.04 [0.98, 1.09]"}}
	d := canary.Decision{Action: canary.ActAdvance, Step: 3, Weight: 100, Reason: "approved"}
	after := canary.Apply(plan, before, d, time.Date(2026, 11, 23, 12, 6, 0, 0, time.UTC))
	ch := canary.CommitMessage(plan, before, after, d)
	ch.Evidence = &canary.Evidence{Plan: plan, Before: before, After: after, Decision: d}
	return &ch
}

func intp(i int) *int { return &i }

func TestBodyCarriesTheEvidenceAndItsMarker(t *testing.T) {
	ch := evidence()
	ch.Trailers[3].Value = v2
	m, err := MetaOf(ch)
	if err != nil {
		t.Fatal(err)
	}
	m.Approves = 2
	body := Body(m, ch)
	for _, want := range []string{
		"`" + v2 + "`", "`sha256:5f2b9c0d1e3a4b5c6d7e8f90123456789abcdef0123456789abcdef01234567`",
		"| 0 | set canary weight 10% | done |", "| 2 | pause until approved | done |",
		"| 3 | set canary weight 100% | **this change** |",
		"| latency | ✅ Successful | `histogram_quantile(0.95, …)` | step 12:00:00 → 12:05:00Z (5m0s) | `1.04` | result < 1.2 ratio 1.04 [0.98, 1.09] |",
		"waits for approval",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	back, ok := ParseMarker(body)
	if !ok || back != m {
		t.Fatalf("marker read back as %+v (%v), want %+v", back, ok, m)
	}
}

func TestGateTableKeepsCellsInOneRow(t *testing.T) {
	table := GateTable([]canary.GateResult{{Gate: "errors", Verdict: canary.VerdictFailed, Query: "sum(rate(x[1m])) | y",
		Reason: "canary 3.1% vs stable 0.4%\nratio 7.8"}})
	rows := strings.Split(strings.TrimSpace(table), "\n")
	if got := rows[len(rows)-1]; strings.Count(got, " | ") != 5 || !strings.Contains(got, "❌ Failed") {
		t.Fatalf("row %q is not one six-cell row with the verdict", got)
	}
}

func TestMetaOfRejectsAChangeWithoutTrailers(t *testing.T) {
	if _, err := MetaOf(&canary.Change{Subject: "x"}); err == nil {
		t.Fatal("a change without trailers was accepted")
	}
}
