package rolloutsimport

import (
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

func routeRollout(steps string) string {
	return `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: m}
spec:
  strategy:
    canary:
      stableService: m-stable-predictor
      canaryService: m-canary-predictor
      steps:
` + steps
}

func dropped(res *Result) string {
	var b strings.Builder
	for _, d := range res.Dropped {
		b.WriteString(d.String() + "\n")
	}
	return b.String()
}

// A mirror set while the weight is up is not carried over; a second mirror
// while one is in force is not either; route steps outside gateway mode
// are dropped.
func TestConvertRouteStepsRefused(t *testing.T) {
	gw := Options{Mode: canary.ModeGateway, HTTPRoute: "m"}
	res, err := Convert(Input{Name: "r.yaml", Data: []byte(routeRollout(`      - setWeight: 10
      - setMirrorRoute: {name: a, percentage: 5, match: [{path: {prefix: /}}]}
`))}, nil, gw)
	if err != nil {
		t.Fatal(err)
	}
	if d := dropped(res); !strings.Contains(d, "steps[1].setMirrorRoute: canarybot mirrors only while the canary's weight is 0 (users never get its answers); the weight here is 10") {
		t.Errorf("dropped:\n%s", d)
	}
	if len(res.Plan.Spec.Steps) != 1 {
		t.Errorf("steps = %+v", res.Plan.Spec.Steps)
	}

	res, err = Convert(Input{Name: "r.yaml", Data: []byte(routeRollout(`      - setMirrorRoute: {name: a, match: [{path: {prefix: /}}]}
      - setMirrorRoute: {name: b, percentage: 5, match: [{path: {prefix: /}}]}
      - setMirrorRoute: {name: a}
      - setWeight: 10
`))}, nil, gw)
	if err != nil {
		t.Fatal(err)
	}
	if d := dropped(res); !strings.Contains(d, `steps[1].setMirrorRoute: canarybot runs one mirror at a time; "a" is in force since r.yaml: spec.strategy.canary.steps[0].setMirrorRoute`) {
		t.Errorf("dropped:\n%s", d)
	}
	s := res.Plan.Spec.Steps
	if len(s) != 3 || *s[0].SetMirrorRoute.Percent != 100 || *s[1].SetMirrorRoute.Percent != 0 || *s[2].SetWeight != 10 {
		t.Errorf("steps = %+v", s)
	}
	res.Plan.Default()
	if err := res.Plan.Validate(); err != nil && strings.Contains(err.Error(), "steps") {
		t.Errorf("imported steps do not validate: %v", err)
	}

	res, err = Convert(Input{Name: "r.yaml", Data: []byte(routeRollout(`      - setHeaderRoute: {name: d, match: [{headerName: x, headerValue: {exact: "1"}}]}
      - setWeight: 10
`))}, nil, Options{Mode: canary.ModeKServe, InferenceService: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if d := dropped(res); !strings.Contains(d, "steps[0].setHeaderRoute: header routes need traffic mode gateway, got kserve") {
		t.Errorf("dropped:\n%s", d)
	}
}
