package fleet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/canary/canarytest"
)

// One fleet serves two repositories: every valid plan in each is rolled
// out to promotion with each transition committed exactly once; a plan in
// a multi-document file is found; an invalid plan and two plans claiming
// one overlay are reported by file and the others go on; a plan added by
// a later commit is picked up without a restart.
func TestFleetDrivesEveryPlanOfEveryRepository(t *testing.T) {
	steps := []string{"setWeight: 20", "setWeight: 60", "setWeight: 100"}
	platform := newRemote(t, map[string]string{
		".canarybot/plans/qwen.yaml":   planYAML("qwen", steps...),
		".canarybot/plans/team/b.yaml": planYAML("llama", steps...) + "---\n" + planYAML("mistral", steps...),
		"README.md":                    "platform gitops\n",
	})
	fraud := newRemote(t, map[string]string{
		".canarybot/config.yaml":   "apiVersion: canarybot.dev/v1alpha1\nkind: RepositoryConfig\nspec: {plansDir: deploy/plans}\n",
		"deploy/plans/fraud.yaml":  planYAML("fraud", steps...),
		"deploy/plans/broken.yaml": strings.Replace(planYAML("broken", steps...), "setWeight: 20", "setWeight: twenty", 1),
		"deploy/plans/dup-a.yaml":  planYAML("dup-a", steps...),
		"deploy/plans/dup-b.yaml":  strings.Replace(planYAML("dup-b", steps...), "overlay: overlays/dup-b", "overlay: overlays/dup-a", 1),
	})
	logs := &logBuffer{}
	f, _ := newFleet(t, 200*time.Millisecond, logs, map[string]*remote{"acme/platform": platform, "acme/fraud": fraud})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	eventually(t, "every valid plan promoted", time.Minute, func() bool {
		return promoted(platform, "qwen", "llama", "mistral")() && promoted(fraud, "fraud")()
	})
	platform.commit("add a plan", map[string]string{".canarybot/plans/gemma.yaml": planYAML("gemma", steps...)}, nil)
	eventually(t, "the plan added by a commit promoted", time.Minute, promoted(platform, "gemma"))

	for _, rm := range []*remote{platform, fraud} {
		for key, n := range rm.transitions() {
			if n != 1 {
				t.Errorf("transition %s committed %d times", key, n)
			}
		}
	}
	want := map[string]int{"qwen/start/0": 1, "qwen/advance/1": 1, "qwen/advance/2": 1, "qwen/promote/2": 1}
	got := platform.transitions()
	for key := range want {
		if got[key] != 1 {
			t.Errorf("transition %s: %d commits; all: %v", key, got[key], got)
		}
	}
	for _, p := range []string{"broken", "dup-a", "dup-b"} {
		if st := fraud.state(p); st != nil {
			t.Errorf("invalid plan %s was driven: %+v", p, st.Status)
		}
	}
	out := logs.String()
	for _, wantLog := range []string{
		`file=deploy/plans/broken.yaml`, `spec.steps[0].setWeight: want an integer, got \"twenty\"`,
		`file=deploy/plans/dup-b.yaml`, `overlay overlays/dup-a is also claimed by deploy/plans/dup-a.yaml`,
		`msg="driving plan" repo=acme/platform plan=gemma`,
	} {
		if !strings.Contains(out, wantLog) {
			t.Errorf("log lacks %q", wantLog)
		}
	}
	if n := strings.Count(out, "file=deploy/plans/broken.yaml"); n != 1 {
		t.Errorf("the invalid plan was reported %d times, want once (until it changes)", n)
	}
}

// A plan deleted mid-rollout is held where it is: no revert, no further
// step, its state file stays. A wake-up reaches only the plans it names.
func TestFleetHoldsADeletedPlanAndWakesOnlyWhomItNames(t *testing.T) {
	rm := newRemote(t, map[string]string{
		".canarybot/plans/held.yaml":  planYAML("held", "setWeight: 10", "pause: {duration: 1h}", "setWeight: 100"),
		".canarybot/plans/other.yaml": planYAML("other", "setWeight: 10", "pause: {duration: 1h}", "setWeight: 100"),
	})
	logs := &logBuffer{}
	// A long poll: after their first ticks, plans move only when woken.
	f, fk := newFleet(t, time.Hour, logs, map[string]*remote{"acme/gitops": rm})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()

	paused := func(plan string) func() bool {
		return func() bool {
			st := rm.state(plan)
			return st != nil && st.Status.StepIndex == 1 && st.Status.Phase == canary.PhaseProgressing
		}
	}
	eventually(t, "both plans pausing at step 1", time.Minute, func() bool { return paused("held")() && paused("other")() })
	before := rm.git(rm.bare, "rev-parse", "main")

	rm.commit("retire held", nil, []string{".canarybot/plans/held.yaml"})
	f.Wake(func(_ string, p *canary.CanaryPlan) bool { return p.Metadata.Name == "other" })
	eventually(t, "the deletion reported", 30*time.Second, func() bool {
		return strings.Contains(logs.String(), "plan deleted mid-rollout; held where it is, not reverted")
	})
	otherTicks, heldTicks := fk.ticks("other"), fk.ticks("held")
	for range 3 {
		f.Wake(func(_ string, p *canary.CanaryPlan) bool { return p.Metadata.Name == "other" })
		eventually(t, "the woken plan ticked", 30*time.Second, func() bool { return fk.ticks("other") > otherTicks })
		otherTicks = fk.ticks("other")
	}
	if fk.ticks("held") != heldTicks {
		t.Errorf("the deleted plan ticked %d more times", fk.ticks("held")-heldTicks)
	}
	if st := rm.state("held"); st == nil || st.Status.StepIndex != 1 || st.Status.Weight != 10 {
		t.Errorf("the deleted plan's state moved: %+v", st)
	}
	for key := range rm.transitions() {
		if strings.HasPrefix(key, "held/") && !strings.HasSuffix(key, "/0") && !strings.HasPrefix(key, "held/advance/1") {
			t.Errorf("a transition after the deletion: %s", key)
		}
	}
	if commits := rm.git(rm.bare, "rev-list", "--count", before+"..main"); commits != "1" {
		t.Errorf("%s commits since both paused, want only the human's deletion", commits)
	}
}

// A burst of wake-ups (a registry that notifies on every push, or anyone
// who can reach the hook) starts at most one tick of a plan per MinPoll.
func TestFleetWakeUpsAreCoalescedPerMinPoll(t *testing.T) {
	rm := newRemote(t, map[string]string{
		".canarybot/plans/p.yaml": planYAML("p", "setWeight: 10", "pause: {duration: 1h}", "setWeight: 100"),
	})
	clock := canarytest.NewManualClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	f, fk := newFleetWith(t, 24*time.Hour, time.Minute, clock, &logBuffer{}, map[string]*remote{"acme/gitops": rm})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, "the plan pausing", time.Minute, func() bool {
		st := rm.state("p")
		return st != nil && st.Status.StepIndex == 1
	})
	settled := func() int {
		n := fk.ticks("p")
		time.Sleep(300 * time.Millisecond) // real time for any stray tick to show
		return n
	}
	before := settled() // the tick right after the last commit may still come
	for range 20 {
		if after := settled(); after == before {
			break
		} else {
			before = after
		}
	}
	wakeAll := func() {
		for range 100 {
			if n := f.Wake(func(_ string, p *canary.CanaryPlan) bool { return p.Metadata.Name == "p" }); n != 1 {
				t.Fatalf("Wake woke %d plans, want 1", n)
			}
		}
	}
	for round := 1; round <= 3; round++ {
		wakeAll() // within MinPoll of the last tick: nothing yet
		if n := settled(); n != before+round-1 {
			t.Fatalf("round %d: %d ticks before MinPoll passed, want %d", round, n, before+round-1)
		}
		clock.Advance(time.Minute)
		eventually(t, "the woken tick", 30*time.Second, func() bool { return fk.ticks("p") == before+round })
		if n := settled(); n != before+round {
			t.Fatalf("round %d: 100 wake-ups started %d ticks, want 1", round, n-before-round+1)
		}
	}
}

// Two replicas, both active on the same repository with their own clones,
// rely on the push as compare-and-swap: every transition is committed
// exactly once, whoever commits it.
func TestTwoActiveReplicasCommitEachTransitionOnce(t *testing.T) {
	files := map[string]string{}
	var names []string
	for i := range 6 {
		name := fmt.Sprintf("model-%d", i)
		names = append(names, name)
		files[".canarybot/plans/"+name+".yaml"] = planYAML(name, "setWeight: 10", "setWeight: 30", "setWeight: 60", "setWeight: 100")
	}
	rm := newRemote(t, files)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		f, _ := newFleet(t, 100*time.Millisecond, &logBuffer{}, map[string]*remote{"acme/gitops": rm})
		wg.Add(1)
		go func() { defer wg.Done(); _ = f.Run(ctx) }()
	}
	eventually(t, "every plan promoted", 2*time.Minute, promoted(rm, names...))
	cancel()
	wg.Wait()
	got := rm.transitions()
	if len(got) != 6*5 {
		t.Errorf("%d distinct transitions, want %d: %v", len(got), 6*5, got)
	}
	for key, n := range got {
		if n != 1 {
			t.Errorf("transition %s committed %d times", key, n)
		}
	}
}
