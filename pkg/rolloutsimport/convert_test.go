package rolloutsimport

import (
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

const clusterRollout = `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: m}
spec:
  strategy:
    canary:
      steps:
      - setWeight: 50
      - setWeight: 20
      - pause: {duration: "90"}
      - analysis:
          templates: [{templateName: errs, clusterScope: true}]
          args: [{name: side, value: canary}]
      - analysis:
          templates: [{templateName: errs, clusterScope: true}]
          args: [{name: side, value: stable}]
      - analysis:
          templates: [{templateName: errs, clusterScope: true}]
          args: [{name: side, value: canary}]
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: errs}
spec:
  args: [{name: side}, {name: num, value: "3"}]
  metrics:
  - name: Error_Rate
    count: "{{ args.num }}"
    failureCondition: "result[ 0 ] > 0.1"
    provider: {prometheus: {query: 'sum(x{side="{{args.side}}"})'}}
`

// One template with other args is another gate (named -2); the same args
// reuse the gate; a lowering weight is dropped; a numeric-string pause is
// seconds; count comes from an arg; no interval and a count keeps it.
func TestConvertClusterTemplateArgs(t *testing.T) {
	res, err := Convert(Input{Name: "r.yaml", Data: []byte(clusterRollout)}, nil,
		Options{Mode: canary.ModeKServe, InferenceService: "m"})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Plan.Spec
	if len(s.Gates) != 2 || s.Gates[0].Name != "error-rate" || s.Gates[1].Name != "error-rate-2" {
		t.Fatalf("gates = %+v, want error-rate and error-rate-2", s.Gates)
	}
	g := s.Gates[0].Threshold
	if g.Query != "sum(x{side=\"canary\"})\n" || g.FailureCondition != "result > 0.1" || *g.Count != 3 || g.Interval != nil {
		t.Errorf("gate = %+v (count %d)", g, *g.Count)
	}
	if len(s.Steps) != 5 || s.Steps[1].Pause.Duration.Duration != 90*time.Second ||
		s.Steps[4].Analysis.Gates[0] != "error-rate" || s.Steps[3].Analysis.Gates[0] != "error-rate-2" {
		t.Errorf("steps = %+v", s.Steps)
	}
	if len(res.Dropped) != 1 || !strings.Contains(res.Dropped[0].String(), "r.yaml: spec.strategy.canary.steps[1].setWeight: lowers the weight from 50 to 20") {
		t.Errorf("dropped = %v", res.Dropped)
	}
}

func TestCountWithoutInterval(t *testing.T) {
	src := strings.Replace(clusterRollout, `    count: "{{ args.num }}"`+"\n", "", 1)
	res, err := Convert(Input{Name: "r.yaml", Data: []byte(src)}, nil, Options{Mode: canary.ModeKServe, InferenceService: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if c := *res.Plan.Spec.Gates[0].Threshold.Count; c != 1 {
		t.Errorf("count = %d, want 1 (Argo Rollouts measures once without count and interval)", c)
	}
}

func TestSubst(t *testing.T) {
	a := argValues{values: map[string]string{"ns": "models"}, unresolved: map[string]string{"hash": "x.yaml: args[0].valueFrom"}}
	if got, err := a.subst(`{ns="{{args.ns}}",n2="{{ args.ns }}"}`); err != nil || got != `{ns="models",n2="models"}` {
		t.Errorf("subst = %q, %v", got, err)
	}
	if _, err := a.subst("{{args.hash}}"); err == nil || !strings.Contains(err.Error(), "valueFrom") {
		t.Errorf("valueFrom arg: err = %v", err)
	}
	if _, err := a.subst("{{args.nope}}"); err == nil || !strings.Contains(err.Error(), `no arg "nope" is declared`) {
		t.Errorf("undeclared arg: err = %v", err)
	}
}
