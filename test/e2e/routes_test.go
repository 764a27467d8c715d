//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/canarybot/canarybot/internal/e2e/traffic"
	"github.com/canarybot/canarybot/internal/modelsim"
	"github.com/canarybot/canarybot/pkg/canary"
)

// routeSteps come before planFor's 30% step: a dogfood header route, then
// a 20% mirror at weight 0 with the latency gate judging the canary on
// mirrored requests only, the mirror removed before the weight rises.
const routeSteps = `  steps:
  - setHeaderRoute:
      name: dogfood
      match:
      - headers: [{name: x-canary, value: "true"}]
  - pause: {duration: 5s}
  - setMirrorRoute: {percent: 20}
  - analysis: {gates: [latency-vs-stable]}
  - setMirrorRoute: {percent: 0}
`

// loadRPS is startCluster's user load.
const loadRPS = 40

func withRouteSteps(plan string) string {
	return strings.Replace(plan, "  steps:\n", routeSteps, 1)
}

var httpRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

// liveRule is the part of a live HTTPRoute rule the test checks.
type liveRule struct {
	Matches []struct {
		Headers []struct {
			Type  string `json:"type"`
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"headers"`
		Path *struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"path"`
	} `json:"matches"`
	BackendRefs []struct {
		Name   string `json:"name"`
		Weight *int   `json:"weight"`
	} `json:"backendRefs"`
	Filters []struct {
		Type          string `json:"type"`
		RequestMirror *struct {
			BackendRef struct {
				Name string `json:"name"`
				Port *int   `json:"port"`
			} `json:"backendRef"`
			Percent *int `json:"percent"`
		} `json:"requestMirror"`
	} `json:"filters"`
}

// liveRoute is the HTTPRoute as the kube-apiserver stores it.
type liveRoute struct {
	at    time.Time
	raw   string
	rules []liveRule
}

// dogfood reports whether rule 1 is the dogfood header route: the canary
// alone, for requests with x-canary: true on rule 0's path.
func (l liveRoute) dogfood() bool {
	if len(l.rules) != 2 {
		return false
	}
	r := l.rules[1]
	if len(r.BackendRefs) != 1 || r.BackendRefs[0].Name != "qwen-canary-predictor" || len(r.Matches) != 1 {
		return false
	}
	m := r.Matches[0]
	return len(m.Headers) == 1 && m.Headers[0].Name == "x-canary" && m.Headers[0].Value == "true" &&
		m.Headers[0].Type == "Exact" && m.Path != nil && m.Path.Type == "PathPrefix" && m.Path.Value == "/"
}

// mirror is the percent of rule 0's RequestMirror filter to the canary,
// or -1 without one.
func (l liveRoute) mirror() int {
	if len(l.rules) == 0 {
		return -1
	}
	for _, f := range l.rules[0].Filters {
		if f.Type == "RequestMirror" && f.RequestMirror != nil && f.RequestMirror.BackendRef.Name == "qwen-canary-predictor" {
			if f.RequestMirror.Percent == nil {
				return 100
			}
			return *f.RequestMirror.Percent
		}
	}
	return -1
}

// canaryWeight is rule 0's weight for the canary, or -1 when unset.
func (l liveRoute) canaryWeight() int {
	if len(l.rules) == 0 {
		return -1
	}
	for _, b := range l.rules[0].BackendRefs {
		if b.Name == "qwen-canary-predictor" && b.Weight != nil {
			return *b.Weight
		}
	}
	return -1
}

// bare reports whether the route carries no bot-owned route: one rule,
// no filter.
func (l liveRoute) bare() bool { return len(l.rules) == 1 && len(l.rules[0].Filters) == 0 }

// readRoute reads the HTTPRoute qwen from the kube-apiserver.
func readRoute(ctx context.Context, dyn dynamic.Interface) (liveRoute, error) {
	obj, err := dyn.Resource(httpRoutes).Namespace("models").Get(ctx, "qwen", metav1.GetOptions{})
	if err != nil {
		return liveRoute{}, fmt.Errorf("get httproute qwen: %w", err)
	}
	spec, err := json.Marshal(obj.Object["spec"])
	if err != nil {
		return liveRoute{}, fmt.Errorf("encode httproute qwen: %w", err)
	}
	var doc struct {
		Rules []liveRule `json:"rules"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		return liveRoute{}, fmt.Errorf("decode httproute qwen: %w", err)
	}
	return liveRoute{at: time.Now(), raw: string(spec), rules: doc.Rules}, nil
}

// liveRoutes records every distinct HTTPRoute spec the kube-apiserver
// held, polled every 100ms.
type liveRoutes struct {
	mu     sync.Mutex
	routes []liveRoute
}

func (r *rollout) recordRoutes() *liveRoutes {
	l := &liveRoutes{}
	dyn := r.dyn()
	go func() {
		for r.ctx.Err() == nil {
			if lr, err := readRoute(r.ctx, dyn); err == nil {
				l.mu.Lock()
				if n := len(l.routes); n == 0 || l.routes[n-1].raw != lr.raw {
					l.routes = append(l.routes, lr)
				}
				l.mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return l
}

func (l *liveRoutes) find(ok func(liveRoute) bool) (liveRoute, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.routes {
		if ok(r) {
			return r, true
		}
	}
	return liveRoute{}, false
}

// latest is the last route recorded.
func (l *liveRoutes) latest() (liveRoute, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.routes) == 0 {
		return liveRoute{}, false
	}
	return l.routes[len(l.routes)-1], true
}

// mirrorTraffic stands in for the gateway's RequestMirror filter, which
// no gateway runs here: while the live HTTPRoute's rule 0 mirrors percent
// of its requests to the canary, copies at that share of the user load
// go to the canary's model server, and their answers are discarded. The
// router still sends users to stable alone (weight 0). It returns how many
// copies were sent.
func (r *rollout) mirrorTraffic(live *liveRoutes) *atomic.Int64 {
	sent := &atomic.Int64{}
	log := slog.New(slog.DiscardHandler)
	go func() {
		pct, stop := -1, func() {}
		defer func() { stop() }()
		for r.ctx.Err() == nil {
			lr, ok := live.latest()
			if p := lr.mirror(); ok && p != pct {
				stop()
				pct, stop = p, func() {}
				if p > 0 {
					ctx, cancel := context.WithCancel(r.ctx)
					load, err := modelsim.NewLoadGenerator(modelsim.LoadConfig{URL: r.servers[1].URL() + "/v1/completions",
						RPS: loadRPS * float64(p) / 100, Model: "qwen", Logger: log})
					if err != nil {
						r.t.Errorf("mirror load: %v", err)
						cancel()
						return
					}
					go func() { _ = load.Run(ctx) }()
					stop = func() { cancel(); sent.Add(load.Counts().Sent) }
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return sent
}

// committed is the SHA of the last commit of action the bot pushed.
func (r *rollout) committed(action canary.Action) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.reports) - 1; i >= 0; i-- {
		if rep := r.reports[i].r; rep.Decision.Action == action && rep.Commit.SHA != "" {
			return rep.Commit.SHA
		}
	}
	r.t.Fatalf("no %s was committed", action)
	return ""
}

// wantBareRouteAfter waits until Argo CD has synced the bot's last action
// commit and checks that the live HTTPRoute carries no bot-owned route and
// the whole user-facing split on stable.
func (r *rollout) wantBareRouteAfter(action canary.Action) {
	r.t.Helper()
	waitReadyApp(r.t, r.ctx, r.argo, r.plan().Spec.ArgoCD.Application, r.committed(action), 2*time.Minute)
	lr, err := readRoute(r.ctx, r.dyn())
	if err != nil {
		r.t.Fatal(err)
	}
	if !lr.bare() || lr.canaryWeight() != 0 {
		r.t.Errorf("after %s the live HTTPRoute still carries bot routes or canary weight: %s", action, lr.raw)
	}
	r.t.Logf("after %s (synced): the live HTTPRoute has %d rule(s), no filter, canary weight %d", action, len(lr.rules), lr.canaryWeight())
}

// TestRouteStepsOnTheRealStack rolls out a gateway plan with a dogfood
// header step and a 20% mirror step on the real stack (Gateway API
// v1.3.0's standard CRDs in the kube-apiserver). It reads the HTTPRoute
// back from the kube-apiserver throughout: the header rule carries the
// match and sends to the canary alone; the mirror filter carries percent
// 20 while the canary's user-facing weight is 0. The latency gate judges
// the canary on mirrored requests only (a stand-in sends them, as no
// gateway runs here): v2 passes it, and the header and mirror routes are
// gone once the promote is synced; v3, 40% slower, fails it while both
// routes are live, and both are gone once the revert is synced.
func TestRouteStepsOnTheRealStack(t *testing.T) {
	r, _ := startRollout(t, &rollout{t: t, mode: canary.ModeGateway, editPlan: withRouteSteps})
	live := r.recordRoutes()
	mirrored := r.mirrorTraffic(live)
	eng := r.engine()
	go func() { _ = eng.Run(r.ctx) }()

	r.promoteV2()
	r.wantRoutesSeen(live, time.Time{})
	r.wantBareRouteAfter(canary.ActPromote)
	t.Logf("mirrored requests sent to the canary during v2's mirror step: %d", mirrored.Load())

	since := time.Now()
	slow := good()
	slow.LatencyMedian = 210 * time.Millisecond
	v3 := r.push("3.0.0")
	r.applier.Register(v3.Location(), traffic.Model{Tag: "3.0.0", Behaviour: slow})
	st := r.waitPhase(v3, canary.PhaseReverted, 2*time.Minute)
	if st.Status.StepIndex != 3 || !strings.Contains(st.Status.Reason, "gate latency-vs-stable failed") {
		t.Errorf("v3 reverted at step %d (%s), want by the latency gate at the mirror's analysis, step 3", st.Status.StepIndex, st.Status.Reason)
	}
	r.wantRoutesSeen(live, since)
	r.wantBareRouteAfter(canary.ActRevert)
}

// wantRoutesSeen checks what the kube-apiserver held after since: the
// header route alone at canary weight 0, then with the mirror at 20%.
func (r *rollout) wantRoutesSeen(live *liveRoutes, since time.Time) {
	r.t.Helper()
	header, ok := live.find(func(l liveRoute) bool { return l.at.After(since) && l.dogfood() && l.mirror() < 0 })
	if !ok {
		r.t.Fatalf("the kube-apiserver never held the dogfood header rule alone")
	}
	r.t.Logf("live header route: %s", header.raw)
	mirror, ok := live.find(func(l liveRoute) bool { return l.at.After(since) && l.dogfood() && l.mirror() == 20 })
	if !ok {
		r.t.Fatalf("the kube-apiserver never held the 20%% mirror beside the header rule")
	}
	if w := mirror.canaryWeight(); w != 0 {
		r.t.Errorf("the canary's user-facing weight was %d while mirroring, want 0: %s", w, mirror.raw)
	}
	r.t.Logf("live mirror route: %s", mirror.raw)
}
