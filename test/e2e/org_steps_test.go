//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/canarybot/canarybot/internal/fakegithub"
	"github.com/canarybot/canarybot/pkg/canary"
)

// approve approves plan's open approval PR as the reviewer.
func (o *org) approve(r orgRepo, plan string) {
	o.t.Helper()
	n := approvalPR(o.gh, r.owner, r.name, plan)
	if n == 0 {
		o.t.Fatalf("%s has no open approval PR for %s", r.full(), plan)
	}
	if _, err := o.gh.Review(r.owner, r.name, n, orgReviewer, "APPROVE", "lgtm"); err != nil {
		o.t.Fatalf("approve %s's PR #%d in %s: %v", plan, n, r.full(), err)
	}
}

// argoGets are the lines of Argo CD's API server log for a Get of app:
// canarybot reads an Application once per tick of its plan (and refreshes
// it after a commit).
func (o *org) argoGets(app string) []string {
	b, _ := os.ReadFile(o.s.LogPath("argocd-server"))
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "/application.ApplicationService/Get") && strings.Contains(l, `grpc.request.content="name:\"`+app+`\"`) {
			out = append(out, l)
		}
	}
	return out
}

// approveWakesOnly approves plan's PR: its webhook wakes plan, which
// moves on and is promoted, and not other, its neighbour in r also paused
// at 50%. The poll is orgPoll (an hour) and a plan waiting for approval
// sets no timer: any tick of other after the approval is a wake-up.
func (o *org) approveWakesOnly(r orgRepo, plan, other string) {
	o.t.Helper()
	bare, app := o.gh.RepoPath(r.owner, r.name), r.app(other)
	time.Sleep(time.Second) // the ticks that opened the approval PRs settle
	ticked := time.Now()
	before := len(o.argoGets(app))
	o.approve(r, plan)
	o.eventually(plan+" at 100% after its approval", 30*time.Second, func() bool {
		st := orgState(bare, plan)
		return st != nil && st.Status.Weight == 100
	})
	moved := time.Since(ticked)
	time.Sleep(time.Second) // what the approval might have woken settles
	gets := o.argoGets(app)
	if len(gets) != before {
		o.t.Errorf("the approval of %s's PR also woke %s: %d ticks since:\n%s", plan, other, len(gets)-before,
			strings.Join(gets[before:], "\n"))
	}
	o.t.Logf("%s: approval → 100%% committed in %s; %s not woken", plan, moved.Round(10*time.Millisecond), other)
	o.eventually(plan+" promoted after its approval", 90*time.Second, func() bool {
		st := orgState(bare, plan)
		return st != nil && st.Status.Phase == canary.PhasePromoted
	})
	if st := orgState(bare, other); st == nil || st.Status.Weight != 50 || st.Status.Phase == canary.PhasePromoted {
		o.t.Errorf("%s moved without its approval: %s", other, describe(st))
	}
}

// pushPlanAndBrokenPlan has a person push, in one commit to r, a new
// KServe plan with its own base and overlay (a copy of fraud-detector's,
// renamed) and an invalid plan. The new plan gets its Argo CD
// Application; the commit gets a failing canarybot/plans check run that
// names the invalid file.
func (o *org) pushPlanAndBrokenPlan(r orgRepo, plan string) {
	t := o.t
	t.Helper()
	files := map[string]string{}
	for p, c := range manifestsIn(t, r.ns, func(s string) string { return strings.ReplaceAll(s, "fraud-detector", plan) }) {
		if strings.HasPrefix(p, "manifests/base/"+plan+"/") || strings.HasPrefix(p, "manifests/overlays/"+plan+"/") {
			files[p] = c
		}
	}
	overlay := "manifests/overlays/" + plan
	files[".canarybot/plans/"+plan+".yaml"] = orgPlan(plan, kserveTraffic(plan), overlay, r.app(plan), false)
	files[".canarybot/plans/broken.yaml"] = strings.Replace(orgPlan("broken", kserveTraffic("broken"),
		"manifests/overlays/broken", r.app("broken"), false), "setWeight: 100", "setWeight: lots", 1)
	if err := o.s.Application(o.ctx, r.app(plan), o.gh.RepoPath(r.owner, r.name), overlay, r.ns); err != nil {
		t.Fatal(err)
	}
	token := o.gh.AddUser("dev", fakegithub.PermWrite)
	head := humanPush(t, o.gh, "dev", token, r.owner, r.name, "canary "+plan+", and a plan with a typo", files)
	pushed := time.Now()
	o.eventually("the canarybot/plans check on "+head[:8], 30*time.Second, func() bool {
		return plansCheck(t, o.gh, r.owner, r.name, head) != nil
	})
	check := plansCheck(t, o.gh, r.owner, r.name, head)
	if check.GetConclusion() != "failure" || !strings.Contains(check.GetOutput().GetSummary(), ".canarybot/plans/broken.yaml") {
		t.Errorf("canarybot/plans on %s: %s %q, want a failure naming .canarybot/plans/broken.yaml",
			head[:8], check.GetConclusion(), check.GetOutput().GetSummary())
	}
	o.eventually(plan+" driven without a restart", 30*time.Second, func() bool {
		return strings.Contains(o.log(), `msg="driving plan" repo=`+r.full()+" plan="+plan+" ")
	})
	t.Logf("%s pushed by a person: failing plans check and %s driven %s after the push", head[:8], plan,
		time.Since(pushed).Round(10*time.Millisecond))
}

// waitPromoted waits until every named plan is promoted.
func (o *org) waitPromoted(plans map[orgRepo][]string) {
	o.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var waiting []string
		for r, names := range plans {
			for _, p := range names {
				if st := orgState(o.gh.RepoPath(r.owner, r.name), p); st == nil || st.Status.Phase != canary.PhasePromoted {
					waiting = append(waiting, fmt.Sprintf("%s:%s (%s)", r.full(), p, describe(st)))
				}
			}
		}
		if len(waiting) == 0 {
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(waiting)
			o.t.Fatalf("not promoted after 3m: %s; canarybot's last lines:\n%s", strings.Join(waiting, ", "), o.logTail(40))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func describe(st *canary.RolloutState) string {
	if st == nil {
		return "no state"
	}
	return fmt.Sprintf("%s, step %d, %d%%", st.Status.Phase, st.Status.StepIndex, st.Status.Weight)
}

// checkTransitions: on every repository each transition is committed
// exactly once, and only plans' transitions are: each plan has 4 (start,
// advance to the pause, advance, promote) or as many as want says.
func (o *org) checkTransitions(plans map[orgRepo][]string, want map[string]int) {
	o.t.Helper()
	for r, names := range plans {
		per := map[string][]string{}
		for key, n := range orgTransitions(o.t, o.gh.RepoPath(r.owner, r.name)) {
			if n != 1 {
				o.t.Errorf("%s: transition %s committed %d times", r.full(), key, n)
			}
			plan, _, _ := strings.Cut(key, "/")
			per[plan] = append(per[plan], key)
		}
		for _, plan := range names {
			n, ok := want[plan]
			if !ok {
				n = 4
			}
			keys := per[plan]
			sort.Strings(keys)
			if len(keys) != n || !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, plan+"/promote/") }) {
				o.t.Errorf("%s: %s's transitions %v, want %d ending in a promotion", r.full(), plan, keys, n)
			}
			delete(per, plan)
		}
		for plan, keys := range per {
			o.t.Errorf("%s: transitions %v of %s, which is not a valid plan", r.full(), keys, plan)
		}
	}
}
