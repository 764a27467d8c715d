package appserver

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/internal/fakegithub"
	"github.com/canarybot/canarybot/pkg/canary"
)

// rateLimited counts the calls that spend an installation's REST rate
// limit: REST calls with an installation token, less 304s (conditional
// requests GitHub does not count). Git over smart HTTP and the App's own
// JWT calls are counted apart.
func rateLimited(calls []fakegithub.Call) (rest int, byRoute map[string]int) {
	byRoute = map[string]int{}
	for _, c := range calls {
		if c.Token != fakegithub.TokenInstallation || c.Status == 304 || strings.HasPrefix(c.Route, "GIT ") {
			continue
		}
		rest++
		byRoute[c.Route]++
	}
	return rest, byRoute
}

// The GitHub API cost of canarybot as an App, measured on the fake GitHub
// (which counts every call): calls per rollout of a 5-step plan, and
// calls per idle plan per hour at the default poll (30s) and sweep (5m).
// CANARYBOT_COST_PLANS sets how many plans roll out at once: 4 in `make
// test`, which checks the run, 20 in `make bench-fleet`, which prints the
// numbers beside the targets.
func TestGitHubAPICost(t *testing.T) {
	plans := 4
	if v := os.Getenv("CANARYBOT_COST_PLANS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("CANARYBOT_COST_PLANS=%q: want a positive number", v)
		}
		plans = n
	}
	w := newWorld(t)
	files := map[string]string{}
	var names []string
	for i := range plans {
		name := fmt.Sprintf("model-%03d", i)
		names = append(names, name)
		files[".canarybot/plans/"+name+".yaml"] = planYAML(name, kserve(name),
			"setWeight: 20", "setWeight: 40", "setWeight: 60", "setWeight: 80", "setWeight: 100")
	}
	w.repo("acme", "gitops", files)
	w.gh.AddInstallation("acme")
	w.start(time.Hour, time.Hour)
	w.waitPromotedWithin(map[string][]string{"acme/gitops": names}, 5*time.Minute)
	rollout, byRoute := rateLimited(w.gh.Calls())
	transitions := 0
	for key, n := range w.transitions("acme", "gitops") {
		if n != 1 {
			t.Errorf("transition %s committed %d times", key, n)
		}
		transitions += n
	}

	// Idle: one tick of every plan, then one sweep, each counted alone.
	before, _ := rateLimited(w.gh.Calls())
	ticks := w.edges.ticks(names[0])
	w.fleet.Wake(func(string, *canary.CanaryPlan) bool { return true })
	eventually(t, "one idle tick of every plan", time.Minute, func() bool { return w.edges.ticks(names[0]) > ticks })
	time.Sleep(time.Second)
	afterTicks, _ := rateLimited(w.gh.Calls())
	w.srv.sweep(w.ctx, time.Hour)
	afterSweep, _ := rateLimited(w.gh.Calls())

	perRollout := float64(rollout) / float64(plans)
	perTick := float64(afterTicks-before) / float64(plans)
	perSweep := float64(afterSweep - afterTicks)
	idlePerPlanHour := perTick*3600/30 + perSweep*3600/300/float64(plans)
	t.Logf("github: %d rollouts of 5 steps, %d transitions: %d rate-limited calls, %.1f per rollout, %.1f per transition",
		plans, transitions, rollout, perRollout, float64(rollout)/float64(transitions))
	t.Logf("github: 20 rollouts in one hour cost %.0f calls = %.1f%% of 5,000/h (target ≤ 10%%)", 20*perRollout, 20*perRollout/50)
	t.Logf("github: idle: %.2f calls per plan tick, %.0f per sweep of %d plans: %.3f calls per idle plan per hour; "+
		"1,000 idle plans in one repository: %.0f calls/h = %.2f%% of 5,000/h (target ≤ 5%%)",
		perTick, perSweep, plans, idlePerPlanHour, perTick*3600/30*1000+perSweep*12, (perTick*3600/30*1000+perSweep*12)/50)
	for route, n := range byRoute {
		t.Logf("github: rollouts: %5d %s", n, route)
	}
	if transitions < 6*plans {
		t.Errorf("%d transitions, want at least %d (start, 4 advances, promote per plan)", transitions, 6*plans)
	}
}

// waitPromotedWithin is waitPromoted with a deadline.
func (w *world) waitPromotedWithin(plans map[string][]string, d time.Duration) {
	w.t.Helper()
	eventually(w.t, "plans promoted", d, func() bool {
		for repo, names := range plans {
			owner, name, _ := strings.Cut(repo, "/")
			for _, p := range names {
				if st := w.state(owner, name, p); st == nil || st.Status.Phase != canary.PhasePromoted {
					return false
				}
			}
		}
		return true
	})
}
