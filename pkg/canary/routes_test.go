package canary

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// gatewayRoutesPlan: header route dogfood, a pause, mirror 20%, a pause,
// mirror off, setWeight 50, dogfood removed, setWeight 100.
const gatewayRoutesPlan = `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: qwen}
spec:
  model:
    name: qwen
    source: {oci: {repository: ghcr.io/acme/qwen}}
  traffic:
    mode: gateway
    gateway:
      httpRoute: qwen
      stable: {inferenceService: qwen-stable, service: qwen-stable}
      canary: {inferenceService: qwen-canary, service: qwen-canary}
  overlay: manifests/overlays/qwen
  argocd: {application: qwen}
  steps:
  - setHeaderRoute:
      name: dogfood
      match:
      - headers: [{name: x-canary, value: "true"}]
      - headers: [{name: x-team, value: "ml-.*", type: RegularExpression}, {name: x-env, value: prod}]
  - pause: {duration: 1m}
  - setMirrorRoute: {percent: 20}
  - pause: {duration: 1m}
  - setMirrorRoute: {percent: 0}
  - setWeight: 50
  - setHeaderRoute: {name: dogfood}
  - setWeight: 100
`

func routesPlan(t *testing.T, edit func(string) string) *CanaryPlan {
	t.Helper()
	p, err := ParsePlan([]byte(edit(gatewayRoutesPlan)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRouteStepsParseWithDefaults(t *testing.T) {
	p := routesPlan(t, func(s string) string { return s })
	h := p.Spec.Steps[0].SetHeaderRoute
	if h == nil || h.Name != "dogfood" || len(h.Match) != 2 {
		t.Fatalf("header route = %+v", h)
	}
	if got := h.Match[0].Headers[0].Type; got != HeaderMatchExact {
		t.Errorf("default header match type = %q, want %q", got, HeaderMatchExact)
	}
	if got := h.Match[1].Headers[0].Type; got != HeaderMatchRegex {
		t.Errorf("explicit header match type = %q, want %q", got, HeaderMatchRegex)
	}
	if m := p.Spec.Steps[2].SetMirrorRoute; m == nil || m.Percent == nil || *m.Percent != 20 {
		t.Errorf("mirror step = %+v", m)
	}
}

func TestRouteStepValidation(t *testing.T) {
	cases := map[string]struct {
		edit func(string) string
		want []string
	}{
		"header route outside gateway mode": {
			func(s string) string {
				return strings.Replace(strings.Replace(s, "mode: gateway", "mode: kserve\n    kserve: {inferenceService: qwen}", 1),
					"    gateway:\n      httpRoute: qwen\n      stable: {inferenceService: qwen-stable, service: qwen-stable}\n      canary: {inferenceService: qwen-canary, service: qwen-canary}\n", "", 1)
			},
			[]string{`spec.steps[0].setHeaderRoute: needs traffic.mode gateway, got "kserve"`,
				`spec.steps[2].setMirrorRoute: needs traffic.mode gateway, got "kserve"`},
		},
		"mirror while weight is up": {
			func(s string) string {
				return strings.Replace(s, "  - pause: {duration: 1m}\n  - setMirrorRoute: {percent: 20}", "  - setWeight: 5\n  - setMirrorRoute: {percent: 20}", 1)
			},
			[]string{"spec.steps[2].setMirrorRoute: a mirror runs only while the canary's user-facing weight is 0, but spec.steps[1] set it to 5"},
		},
		"weight raised while mirroring": {
			func(s string) string { return strings.Replace(s, "  - setMirrorRoute: {percent: 0}\n", "", 1) },
			[]string{"spec.steps[4].setWeight: must stay 0 while the mirror route set at spec.steps[2] is in force"},
		},
		"mirror percent missing and out of range": {
			func(s string) string {
				return strings.Replace(strings.Replace(s, "{percent: 20}", "{}", 1), "{percent: 0}", "{percent: 101}", 1)
			},
			[]string{"spec.steps[2].setMirrorRoute.percent: is required", "spec.steps[4].setMirrorRoute.percent: must be between 0 and 100, got 101"},
		},
		"removing a route never set": {
			func(s string) string {
				return strings.Replace(s, "setHeaderRoute: {name: dogfood}", "setHeaderRoute: {name: dogfod}", 1)
			},
			[]string{`spec.steps[6].setHeaderRoute.match: is required: no earlier step set a header route named "dogfod" to remove`},
		},
		"bad header matches": {
			func(s string) string {
				s = strings.Replace(s, `{name: x-canary, value: "true"}`, `{name: "x canary", value: "", type: Prefix}`, 1)
				return strings.Replace(s, `{name: x-env, value: prod}`, `{name: X-Team, value: "("}`, 1)
			},
			[]string{
				`spec.steps[0].setHeaderRoute.match[0].headers[0].name: must be an HTTP header name`,
				`spec.steps[0].setHeaderRoute.match[0].headers[0].value: must be 1 to 1024 characters, got 0`,
				`spec.steps[0].setHeaderRoute.match[0].headers[0].type: must be "Exact" or "RegularExpression" (Gateway API has no prefix match on headers), got "Prefix"`,
				`spec.steps[0].setHeaderRoute.match[1].headers[1].name: header "X-Team" is already matched at [0]`,
			},
		},
		"bad regular expression and name": {
			func(s string) string {
				s = strings.Replace(s, `value: "ml-.*"`, `value: "ml-("`, 1)
				return strings.Replace(s, "name: dogfood\n      match:", "name: Dog_Food\n      match:", 1)
			},
			[]string{"spec.steps[0].setHeaderRoute.match[1].headers[0].value: is not a valid regular expression",
				`spec.steps[0].setHeaderRoute.name: must be a DNS label, got "Dog_Food"`},
		},
		"empty headers": {
			func(s string) string {
				return strings.Replace(s, `headers: [{name: x-canary, value: "true"}]`, "headers: []", 1)
			},
			[]string{"spec.steps[0].setHeaderRoute.match[0].headers: at least one header is required"},
		},
		"two kinds in one step": {
			func(s string) string {
				return strings.Replace(s, "  - setMirrorRoute: {percent: 20}", "  - setMirrorRoute: {percent: 20}\n    pause: {duration: 1m}", 1)
			},
			[]string{"spec.steps[2]: must set exactly one of setWeight, pause, analysis, setHeaderRoute or setMirrorRoute, got 2"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePlan([]byte(tc.edit(gatewayRoutesPlan)))
			if !errors.Is(err, ErrInvalidPlan) {
				t.Fatalf("err = %v, want ErrInvalidPlan", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not mention %q", err, w)
				}
			}
		})
	}
}

func TestTooManyHeaderRoutes(t *testing.T) {
	var steps strings.Builder
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		steps.WriteString("  - setHeaderRoute: {name: " + n + ", match: [{headers: [{name: x-" + n + ", value: \"1\"}]}]}\n")
	}
	_, err := ParsePlan([]byte(strings.Replace(gatewayRoutesPlan, "  steps:\n", "  steps:\n"+steps.String(), 1)))
	if err == nil || !strings.Contains(err.Error(), "spec.steps[4].setHeaderRoute: at most 4 header routes may be in force at once, got 5") {
		t.Errorf("err = %v", err)
	}
}

func TestRoutesAt(t *testing.T) {
	p := routesPlan(t, func(s string) string { return s })
	dogfood := *p.Spec.Steps[0].SetHeaderRoute
	want := []Routes{
		{Headers: []HeaderRoute{dogfood}},
		{Headers: []HeaderRoute{dogfood}},
		{Headers: []HeaderRoute{dogfood}, MirrorPercent: 20},
		{Headers: []HeaderRoute{dogfood}, MirrorPercent: 20},
		{Headers: []HeaderRoute{dogfood}},
		{Headers: []HeaderRoute{dogfood}},
		{Headers: []HeaderRoute{}},
		{Headers: []HeaderRoute{}},
	}
	for i, w := range want {
		got := RoutesAt(p.Spec.Steps, i)
		if len(got.Headers) != len(w.Headers) || got.MirrorPercent != w.MirrorPercent ||
			(len(w.Headers) > 0 && !reflect.DeepEqual(got.Headers, w.Headers)) {
			t.Errorf("RoutesAt(%d) = %+v, want %+v", i, got, w)
		}
	}
	// Setting a route again replaces it in place.
	steps := append([]Step{{SetHeaderRoute: &HeaderRoute{Name: "qa", Match: dogfood.Match[:1]}}}, p.Spec.Steps[0],
		Step{SetHeaderRoute: &HeaderRoute{Name: "qa", Match: dogfood.Match[1:]}})
	got := RoutesAt(steps, 2)
	if len(got.Headers) != 2 || got.Headers[0].Name != "qa" || !reflect.DeepEqual(got.Headers[0].Match, dogfood.Match[1:]) {
		t.Errorf("replaced route = %+v", got.Headers)
	}
}

// The routes follow the rollout: each start and advance records the routes
// in force at its step, a hold keeps them, promote and revert remove them;
// the overlay is asked to express them only while a candidate is in canary.
func TestApplyRecordsAndRemovesRoutes(t *testing.T) {
	p := routesPlan(t, func(s string) string { return s })
	st := Apply(p, NewState("qwen", v1), Decision{Action: ActStart, Candidate: v2, Step: 0, Reason: "new"}, t0)
	if r := DesiredOf(st).Routes; r == nil || len(r.Headers) != 1 || r.Headers[0].Name != "dogfood" || r.MirrorPercent != 0 || DesiredOf(st).CanaryWeight != 0 {
		t.Fatalf("after start: %+v", DesiredOf(st))
	}
	// The pause after the header step is reached with the route kept.
	d := Decide(p, st, Observations{Sync: synced}, t0)
	if d.Action != ActAdvance || d.Step != 1 || !strings.Contains(d.Reason, "header route dogfood") {
		t.Fatalf("header step decision = %+v", d)
	}
	st = Apply(p, st, Decision{Action: ActAdvance, Step: 2, Weight: 0}, t0)
	if r := DesiredOf(st).Routes; r == nil || len(r.Headers) != 1 || r.MirrorPercent != 20 {
		t.Fatalf("at the mirror step: %+v", r)
	}
	held := Apply(p, st, Decision{Action: ActHold, Step: 2, Reason: "paused"}, t0)
	if !reflect.DeepEqual(DesiredOf(held).Routes, DesiredOf(st).Routes) {
		t.Errorf("hold changed the routes: %+v", DesiredOf(held).Routes)
	}
	b, err := MarshalState(held)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseState(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(DesiredOf(back), DesiredOf(held)) {
		t.Errorf("routes lost in the state file: %+v, want %+v\n%s", DesiredOf(back), DesiredOf(held), b)
	}
	for _, a := range []Action{ActPromote, ActRevert} {
		end := Apply(p, st, Decision{Action: a, Reason: "end"}, t0)
		if end.Status.Routes != nil || DesiredOf(end).Routes != nil {
			t.Errorf("%s kept routes: %+v", a, end.Status.Routes)
		}
	}
	st = Apply(p, st, Decision{Action: ActAdvance, Step: 7, Weight: 100}, t0)
	if st.Status.Routes != nil {
		t.Errorf("routes recorded after every route was removed: %+v", st.Status.Routes)
	}
}

func TestDescribeRoute(t *testing.T) {
	p := routesPlan(t, func(s string) string { return s })
	want := map[int]string{
		0: "header route dogfood: x-canary=true or x-team~ml-.* and x-env=prod to the canary",
		2: "mirror 20% of requests to the canary",
		4: "remove the mirror route",
		5: "",
		6: "remove header route dogfood",
	}
	for i, w := range want {
		if got := p.Spec.Steps[i].DescribeRoute(); got != w {
			t.Errorf("step %d: %q, want %q", i, got, w)
		}
	}
}
