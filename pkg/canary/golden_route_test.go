package canary

import (
	"strings"
	"testing"
)

// goldenRoutePlan is gatewayRoutesPlan with a golden set judged through
// the dogfood header route at steps 1 and 3, edited by edit.
func goldenRoutePlan(edit func(string) string) string {
	p := strings.Replace(gatewayRoutesPlan, "  - pause: {duration: 1m}\n", "  - analysis: {gates: [golden]}\n", 2)
	return edit(p + `  gates:
  - name: golden
    goldenSet:
      path: .canarybot/golden/qwen.yaml
      headerRoute: dogfood
      stable: {url: "http://qwen-stable.models/v1/completions"}
      canary: {url: "http://gateway.models/v1/completions", headers: {x-extra: "1"}}
`)
}

func TestGoldenSetThroughAHeaderRoute(t *testing.T) {
	p, err := ParsePlan([]byte(goldenRoutePlan(func(s string) string { return s })))
	if err != nil {
		t.Fatal(err)
	}
	h := p.Spec.Gates[0].GoldenSet.Canary.Headers
	if len(h) != 2 || h["x-canary"] != "true" || h["x-extra"] != "1" {
		t.Errorf("canary headers = %v, want the route's first match and the gate's own", h)
	}
	if p.Spec.Gates[0].GoldenSet.Stable.Headers != nil {
		t.Errorf("stable got headers: %v", p.Spec.Gates[0].GoldenSet.Stable.Headers)
	}
	// The gate's own value for a route header wins.
	p, err = ParsePlan([]byte(goldenRoutePlan(func(s string) string {
		return strings.Replace(s, `x-extra: "1"`, `x-canary: "yes"`, 1)
	})))
	if err != nil || p.Spec.Gates[0].GoldenSet.Canary.Headers["x-canary"] != "yes" {
		t.Errorf("the gate's own header: %v, %v", p, err)
	}

	for _, tc := range []struct {
		name string
		edit func(string) string
		want string
	}{
		{"unknown route", func(s string) string { return strings.Replace(s, "headerRoute: dogfood", "headerRoute: beta", 1) },
			`spec.gates[0].goldenSet.headerRoute: no setHeaderRoute step sets a header route named "beta"`},
		{"not exact", func(s string) string {
			return strings.Replace(s, `[{name: x-canary, value: "true"}]`, `[{name: x-canary, value: "t.*", type: RegularExpression}]`, 1)
		}, `header route "dogfood"'s first match must match every header exactly`},
		{"route removed before the step", func(s string) string {
			return strings.Replace(s, "  - setWeight: 100\n", "  - analysis: {gates: [golden]}\n  - setWeight: 100\n", 1)
		}, `spec.steps[7].analysis: gate golden sends its golden set through header route "dogfood", which is not in force at this step`},
		{"background", func(s string) string {
			return s + "  backgroundAnalysis: {gates: [golden]}\n"
		}, "spec.backgroundAnalysis.gates: gate golden sends its golden set through header route"},
		{"redefined", func(s string) string {
			return strings.Replace(s, "  - setMirrorRoute: {percent: 20}\n",
				"  - setHeaderRoute: {name: dogfood, match: [{headers: [{name: x-canary, value: \"v2\"}]}]}\n  - setMirrorRoute: {percent: 20}\n", 1)
		}, `spec.steps[4].analysis: gate golden: header route "dogfood" has another first match here`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePlan([]byte(goldenRoutePlan(tc.edit)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant it to say %s", err, tc.want)
			}
		})
	}
}
