package canary

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const goodPlan = `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata:
  name: fraud-detector
spec:
  model:
    name: fraud-detector
    source:
      oci: {repository: ghcr.io/acme/fraud-detector}
  traffic:
    mode: kserve
    kserve: {inferenceService: fraud-detector}
  overlay: manifests/overlays/fraud-detector
  argocd: {application: fraud-detector}
  steps:
  - setWeight: 10
  - analysis: {gates: [errors]}
  - pause: {duration: 2m}
  - setWeight: 100
  gates:
  - name: errors
    threshold:
      query: sum(rate(errors[1m]))
      successCondition: result < 0.01
      interval: 30s
`

func TestParsePlanDefaults(t *testing.T) {
	p, err := ParsePlan([]byte(goodPlan))
	if err != nil {
		t.Fatal(err)
	}
	g := p.Spec.Gates[0]
	if g.Type != GateThreshold || g.Threshold.Interval.Duration != 30*time.Second || *g.Threshold.Count != DefaultGateCount ||
		*g.Threshold.FailureLimit != 0 || *g.Threshold.ConsecutiveErrorLimit != DefaultConsecutiveErrorLimit {
		t.Errorf("gate defaults not applied: %+v", g.Threshold)
	}
	r := p.Spec.Rollback
	if r.OnFailure != ActionRevert || r.OnInconclusive != ActionHold || r.OnError != ActionHold || r.OnSyncFailure != ActionRevert {
		t.Errorf("rollback defaults = %+v", r)
	}
	if p.Spec.Concurrency != ConcurrencyQueue || p.Spec.ArgoCD.SyncTimeout.Duration != DefaultSyncTimeout {
		t.Errorf("spec defaults = %s %s", p.Spec.Concurrency, p.Spec.ArgoCD.SyncTimeout.Duration)
	}
	if p.Spec.Steps[2].Pause.Duration.Duration != 2*time.Minute {
		t.Errorf("pause = %s", p.Spec.Steps[2].Pause.Duration.Duration)
	}
}

func TestParsePlanRejects(t *testing.T) {
	cases := map[string]struct {
		yaml string
		want []string
	}{
		"unknown field": {strings.Replace(goodPlan, "  overlay:", "  overlays: x\n  overlay:", 1), []string{`spec.overlays: unknown field`}},
		"unknown nested fields": {strings.Replace(strings.Replace(goodPlan, "- pause: {duration: 2m}", "- pause: {duraton: 2m}", 1), "interval: 30s", "intervall: 30s", 1),
			[]string{"spec.steps[2].pause.duraton: unknown field", "spec.gates[0].threshold.intervall: unknown field"}},
		"duplicate key": {strings.Replace(goodPlan, "  overlay:", "  argocd: {application: x}\n  overlay:", 1), []string{"already set"}},
		"two documents": {goodPlan + "---\n" + goodPlan, []string{"exactly one YAML document, found 2"}},
		"not yaml":      {"{{{", []string{"decode"}},
		"bad duration":  {strings.Replace(goodPlan, "2m", "two minutes", 1), []string{`parse duration "two minutes"`}},
		"oversized":     {goodPlan + "#" + strings.Repeat("x", MaxPlanBytes), []string{"over the"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePlan([]byte(tc.yaml))
			if !errors.Is(err, ErrInvalidPlan) {
				t.Fatalf("err = %v, want ErrInvalidPlan", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// A broken plan reports every problem, each with its field path.
func TestValidateListsEveryError(t *testing.T) {
	broken := `apiVersion: canarybot.dev/v1beta9
kind: Plan
metadata: {name: Bad_Name}
spec:
  model:
    source:
      oci: {repository: "ghcr.io/acme/qwen:latest"}
  traffic:
    mode: gateway
    gateway:
      httpRoute: qwen
      stable: {inferenceService: qwen, service: qwen-svc}
      canary: {inferenceService: qwen, service: qwen-svc}
  overlay: ../../etc
  argocd: {syncTimeout: -1s}
  steps:
  - setWeight: 50
  - setWeight: 20
  - setWeight: 120
  - pause: {}
  - pause: {duration: 1m, untilApproved: true}
  - analysis: {gates: [nope]}
  - {}
  - {setWeight: 10, pause: {duration: 1m}}
  gates:
  - name: lat
    type: datadog
  - name: lat
    threshold: {query: "", count: 0, failureLimit: -1}
  rollback: {onFailure: explode}
  concurrency: parallel
`
	_, err := ParsePlan([]byte(broken))
	if err == nil {
		t.Fatal("broken plan validated")
	}
	want := []string{
		`apiVersion: must be "canarybot.dev/v1alpha1"`,
		`kind: must be "CanaryPlan"`,
		`metadata.name: must be a DNS label`,
		`spec.model.name: is required`,
		`spec.model.source.oci.repository: must name a repository, without a tag`,
		`spec.traffic.gateway.canary.service: must differ`,
		`spec.traffic.gateway.canary.inferenceService: must differ`,
		`spec.overlay: must stay inside the repo`,
		`spec.argocd.application: is required`,
		`spec.argocd.syncTimeout: must be positive`,
		`spec.steps[1].setWeight: must not go below the previous weight 50`,
		`spec.steps[2].setWeight: must be between 0 and 100`,
		`spec.steps[3].pause: needs a duration or untilApproved`,
		`spec.steps[4].pause: set either duration or untilApproved`,
		`spec.steps[5].analysis.gates[0]: no gate named "nope"`,
		`spec.steps[6]: must set exactly one of setWeight, pause, analysis, setHeaderRoute or setMirrorRoute, got 0`,
		`spec.steps[7].setWeight: must not go below the previous weight 120`,
		`spec.steps[7]: must set exactly one of setWeight, pause, analysis, setHeaderRoute or setMirrorRoute, got 2`,
		`spec.gates[0].type: unknown gate type "datadog"`,
		`spec.gates[1].name: duplicate gate "lat"`,
		`spec.gates[1].threshold.query: is required`,
		`spec.gates[1].threshold: needs successCondition, failureCondition or both`,
		`spec.gates[1].threshold.count: must be at least 1`,
		`spec.gates[1].threshold.failureLimit: must not be negative`,
		`spec.rollback.onFailure: must be "revert" or "hold"`,
		`spec.concurrency: must be "queue" or "supersede"`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q", w)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", n, len(want), err)
	}
}

func TestCheckRepoPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"manifests/overlays/qwen": true, "a": true,
		"": false, "/etc": false, "../x": false, "..": false, "a/../../b": false, "a//b": false,
		".git/config": false, `a\b`: false, "a/./b": false,
	} {
		if err := CheckRepoPath(p); (err == nil) != ok {
			t.Errorf("CheckRepoPath(%q) = %v, want ok=%t", p, err, ok)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	st := Apply(testPlan(), NewState("qwen", v1), Decision{Action: ActStart, Candidate: v2, Weight: 10, Reason: "new"}, t0)
	b, err := MarshalState(st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseState(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Candidate != v2 || got.Status.Phase != PhaseProgressing || !got.Status.StepStartedAt.Equal(t0) || len(got.Status.History) != 1 {
		t.Errorf("round trip lost data: %+v", got.Status)
	}
	if _, err := ParseState([]byte("apiVersion: v1\nkind: ConfigMap\n")); !errors.Is(err, ErrInvalidState) {
		t.Errorf("foreign kind accepted: %v", err)
	}
	if _, err := ParseState(append(b, []byte("extra: 1\n")...)); !errors.Is(err, ErrInvalidState) {
		t.Errorf("unknown field accepted: %v", err)
	}
}
