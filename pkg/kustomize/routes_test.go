package kustomize

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

func dogfoodRoute() canary.HeaderRoute {
	return canary.HeaderRoute{Name: "dogfood", Match: []canary.HeaderRouteMatch{
		{Headers: []canary.HeaderMatch{{Type: canary.HeaderMatchExact, Name: "x-canary", Value: "true"}}},
		{Headers: []canary.HeaderMatch{
			{Type: canary.HeaderMatchRegex, Name: "x-team", Value: "ml-.*"},
			{Type: canary.HeaderMatchExact, Name: "x-env", Value: "prod"},
		}},
	}}
}

// builtRule is rule i of the built HTTPRoute qwen as generic JSON.
func builtRule(t *testing.T, e *Expressed, i int) map[string]any {
	t.Helper()
	rules, err := decodeRules(e.HTTPRoutes["qwen"].Raw)
	if err != nil {
		t.Fatal(err)
	}
	if i >= len(rules) {
		t.Fatalf("the route has %d rules, want rule %d", len(rules), i)
	}
	return rules[i]
}

// wantHeaderRule checks rule 1 of the built route: the canary alone, for
// the path of rule 0 with each alternative's headers.
func wantHeaderRule(t *testing.T, e *Expressed) {
	t.Helper()
	b, err := json.Marshal(builtRule(t, e, 1))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"backendRefs":[{"group":"","kind":"Service","name":"qwen-canary-predictor","port":80}],` +
		`"matches":[{"headers":[{"name":"x-canary","type":"Exact","value":"true"}],"path":{"type":"PathPrefix","value":"/"}},` +
		`{"headers":[{"name":"x-team","type":"RegularExpression","value":"ml-.*"},{"name":"x-env","type":"Exact","value":"prod"}],"path":{"type":"PathPrefix","value":"/"}}]}`
	if string(b) != want {
		t.Errorf("header rule = %s\nwant %s", b, want)
	}
}

func wantRulesOnly(n int) func(t *testing.T, e *Expressed) {
	return func(t *testing.T, e *Expressed) {
		t.Helper()
		if got := len(e.HTTPRoutes["qwen"].Rules); got != n {
			t.Errorf("the route has %d rules, want %d", got, n)
		}
		if got := mirrorPercent(e.HTTPRoutes["qwen"].Raw, 0, "qwen-canary-predictor"); got != "<no mirror>" {
			t.Errorf("rule 0 mirrors to the canary: %s", got)
		}
	}
}

func all(fs ...func(t *testing.T, e *Expressed)) func(t *testing.T, e *Expressed) {
	return func(t *testing.T, e *Expressed) {
		t.Helper()
		for _, f := range fs {
			f(t, e)
		}
	}
}

// Golden cases for the bot-owned routes: a header route beside a 30%
// split; a header route and a 20% mirror at weight 0; and both removed by
// promote and by revert, which render exactly what they render without
// routes (gateway-promoted, and the stable split).
func TestRenderRoutesGolden(t *testing.T) {
	routes := &canary.Routes{Headers: []canary.HeaderRoute{dogfoodRoute()}}
	both := &canary.Routes{Headers: []canary.HeaderRoute{dogfoodRoute()}, MirrorPercent: 20}
	cases := []goldenCase{
		{"gateway-header-route", gatewayTraffic(),
			canary.Desired{Stable: qwenStable, Canary: qwenCanary, CanaryWeight: 30, Routes: routes},
			all(wantGateway(qwenStable, qwenCanary, 70, 30), wantHeaderRule, func(t *testing.T, e *Expressed) {
				if got := len(e.HTTPRoutes["qwen"].Rules); got != 2 {
					t.Errorf("the route has %d rules, want 2", got)
				}
			})},
		{"gateway-mirror", gatewayTraffic(),
			canary.Desired{Stable: qwenStable, Canary: qwenCanary, CanaryWeight: 0, Routes: both},
			all(wantGateway(qwenStable, qwenCanary, 100, 0), wantHeaderRule, func(t *testing.T, e *Expressed) {
				if got := mirrorPercent(e.HTTPRoutes["qwen"].Raw, 0, "qwen-canary-predictor"); got != "20" {
					t.Errorf("rule 0 mirror percent = %s, want 20", got)
				}
				f, _ := json.Marshal(builtRule(t, e, 0)["filters"])
				const want = `[{"requestMirror":{"backendRef":{"group":"","kind":"Service","name":"qwen-canary-predictor","port":80},"percent":20},"type":"RequestMirror"}]`
				if string(f) != want {
					t.Errorf("rule 0 filters = %s\nwant %s", f, want)
				}
			})},
		{"gateway-routes-promoted", gatewayTraffic(),
			canary.Desired{Stable: qwenCanary},
			all(wantGateway(qwenCanary, qwenCanary, 100, 0), wantRulesOnly(1))},
		{"gateway-routes-reverted", gatewayTraffic(),
			canary.Desired{Stable: qwenStable},
			all(wantGateway(qwenStable, qwenStable, 100, 0), wantRulesOnly(1))},
	}
	b := NewBuilder()
	r := NewRenderer(b)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runGolden(t, r, b, tc) })
	}
	// Promote after routes writes what a promote without them writes.
	component := func(c string) map[string][]byte {
		out := map[string][]byte{}
		for p, b := range readTree(t, filepath.Join("testdata", c, "expected")) {
			if strings.HasPrefix(p, "overlay/canarybot/") {
				out[p] = b
			}
		}
		return out
	}
	expectMatchingTrees(t, component("gateway-routes-promoted"), component("gateway-promoted"))
}

func TestRenderRoutesRefusals(t *testing.T) {
	b := NewBuilder()
	r := NewRenderer(b)
	root := copyTree(t, filepath.Join("testdata", "gateway-30", "original"))
	plan := testPlan("overlay", gatewayTraffic())
	ctx := context.Background()
	mirror := &canary.Routes{MirrorPercent: 10}
	_, err := r.Render(ctx, diskTree(t, root), plan, canary.Desired{Stable: qwenStable, Canary: qwenCanary, CanaryWeight: 5, Routes: mirror})
	if err == nil || !canary.IsTerminal(err) || !strings.Contains(err.Error(), "a mirror route needs the canary's weight at 0, got 5") {
		t.Errorf("mirror at weight 5: %v", err)
	}
	clash := canary.HeaderRoute{Name: "x", Match: []canary.HeaderRouteMatch{{Headers: []canary.HeaderMatch{{Name: "X-Canary", Value: "1"}}}}}
	twice := &canary.Routes{Headers: []canary.HeaderRoute{dogfoodRoute(), {Name: "y", Match: clash.Match}}}
	if _, err := r.Render(ctx, diskTree(t, root), plan, canary.Desired{Stable: qwenStable, Canary: qwenCanary, Routes: twice}); err != nil {
		t.Errorf("two header routes on the same header are separate rules: %v", err)
	}
	many := &canary.Routes{}
	for i := range 16 {
		many.Headers = append(many.Headers, canary.HeaderRoute{Name: string(rune('a' + i)), Match: clash.Match})
	}
	_, err = r.Render(ctx, diskTree(t, root), plan, canary.Desired{Stable: qwenStable, Canary: qwenCanary, Routes: many})
	if err == nil || !strings.Contains(err.Error(), "would make 17 rules; Gateway API allows 16") {
		t.Errorf("17 rules: %v", err)
	}
}

// A user-facing rule that has filters keeps them, and the mirror is added
// after them; a header rule copies them.
func TestRenderMirrorBesideHumanFilters(t *testing.T) {
	root := copyTree(t, filepath.Join("testdata", "gateway-30", "original"))
	files := readTree(t, root)
	const base = "base/httproute.yaml"
	route := strings.Replace(string(files[base]), "      backendRefs:\n",
		"      filters:\n        - type: RequestHeaderModifier\n          requestHeaderModifier:\n            set: [{name: x-served-by, value: gateway}]\n      backendRefs:\n", 1)
	if route == string(files[base]) {
		t.Fatal("no backendRefs to put a filter before")
	}
	files[base] = []byte(route)
	writeTree(t, root, files)
	b := NewBuilder()
	out, err := NewRenderer(b).Render(context.Background(), diskTree(t, root), testPlan("overlay", gatewayTraffic()),
		canary.Desired{Stable: qwenStable, Canary: qwenCanary, Routes: &canary.Routes{Headers: []canary.HeaderRoute{dogfoodRoute()}, MirrorPercent: 50}})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	for p, c := range out {
		files[p] = c
	}
	writeTree(t, root, files)
	built, err := b.Build(context.Background(), dirFS(t, root), "overlay")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Parse(built)
	if err != nil {
		t.Fatal(err)
	}
	f0, _ := json.Marshal(builtRule(t, e, 0)["filters"])
	const want0 = `[{"requestHeaderModifier":{"set":[{"name":"x-served-by","value":"gateway"}]},"type":"RequestHeaderModifier"},` +
		`{"requestMirror":{"backendRef":{"group":"","kind":"Service","name":"qwen-canary-predictor","port":80},"percent":50},"type":"RequestMirror"}]`
	if string(f0) != want0 {
		t.Errorf("rule 0 filters = %s\nwant %s", f0, want0)
	}
	f1, _ := json.Marshal(builtRule(t, e, 1)["filters"])
	if want1 := `[{"requestHeaderModifier":{"set":[{"name":"x-served-by","value":"gateway"}]},"type":"RequestHeaderModifier"}]`; string(f1) != want1 {
		t.Errorf("header rule filters = %s\nwant %s", f1, want1)
	}
}
