package appserver

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/canarybot/canarybot/pkg/canary"
)

// One Server serves two installations (two organisations), three
// repositories with plans and six plans in both traffic modes, each with
// its own installation's token (the fake refuses a token on another
// installation's repository). The poll and the sweep are an hour: only
// webhooks move things after the start. A repository without .canarybot/
// is not served until plans are pushed to it; a plan added by a commit is
// picked up without a restart; an invalid plan gets a failing canarybot/plans
// check on the commit that broke it while the others go on; a repository
// removed from its installation stops being served.
func TestServerServesEveryInstallation(t *testing.T) {
	w := newWorld(t)
	w.repo("acme", "platform", map[string]string{
		".canarybot/plans/qwen.yaml":  planYAML("qwen", gateway("qwen"), "setWeight: 50", "setWeight: 100"),
		".canarybot/plans/fraud.yaml": planYAML("fraud", kserve("fraud"), "setWeight: 100"),
	})
	w.repo("acme", "ml", map[string]string{
		".canarybot/plans/llama.yaml":  planYAML("llama", gateway("llama"), "setWeight: 100"),
		".canarybot/plans/ranker.yaml": planYAML("ranker", kserve("ranker"), "setWeight: 100"),
	})
	w.repo("acme", "docs", map[string]string{"README.md": "no plans here\n"})
	w.repo("globex", "gitops", map[string]string{
		".canarybot/plans/mistral.yaml": planYAML("mistral", gateway("mistral"), "setWeight: 100"),
		".canarybot/plans/embed.yaml":   planYAML("embed", kserve("embed"), "setWeight: 100"),
	})
	acme := w.gh.AddInstallation("acme")
	globex := w.gh.AddInstallation("globex", "gitops")
	w.start(time.Hour, time.Hour)

	if got, want := w.srv.Served(), []string{"acme/ml", "acme/platform", "globex/gitops"}; !slices.Equal(got, want) {
		t.Fatalf("served %v, want %v", got, want)
	}
	plans := map[string][]string{"acme/platform": {"qwen", "fraud"}, "acme/ml": {"llama", "ranker"}, "globex/gitops": {"mistral", "embed"}}
	w.waitPromoted(plans)
	for repo, names := range plans {
		owner, name, _ := strings.Cut(repo, "/")
		for key, n := range w.transitions(owner, name) {
			if n != 1 {
				t.Errorf("%s: transition %s committed %d times", repo, key, n)
			}
		}
		if got := len(w.transitions(owner, name)); got < 2*len(names) {
			t.Errorf("%s: %d transitions, want at least %d", repo, got, 2*len(names))
		}
	}
	if w.gh.InstallationOf("globex", "gitops") != globex || w.gh.InstallationOf("acme", "ml") != acme {
		t.Fatal("the fake's installations are not as set up")
	}

	// A plan added by a commit, and a broken one beside it: the new plan
	// is driven without a restart, the broken one is reported on its
	// commit, and the others are not held up.
	broken := w.commit("globex", "gitops", "add phi, and a typo", map[string]string{
		".canarybot/plans/phi.yaml":    planYAML("phi", kserve("phi"), "setWeight: 100"),
		".canarybot/plans/broken.yaml": strings.Replace(planYAML("broken", kserve("broken"), "setWeight: 100"), "setWeight: 100", "setWeight: lots", 1),
	})
	w.waitPromoted(map[string][]string{"globex/gitops": {"phi"}})
	check := w.waitPlansCheck("globex", "gitops", broken)
	if check.GetConclusion() != "failure" || !strings.Contains(check.GetOutput().GetSummary(), ".canarybot/plans/broken.yaml") {
		t.Fatalf("plans check on %s: %s %q", broken[:8], check.GetConclusion(), check.GetOutput().GetSummary())
	}

	// Plans pushed to an unserved repository are found by its push
	// webhook (the sweep, an hour here, would find them too).
	w.commit("acme", "docs", "canary the docs model", map[string]string{
		".canarybot/plans/docs.yaml": planYAML("docs", kserve("docs"), "setWeight: 100"),
	})
	w.waitPromoted(map[string][]string{"acme/docs": {"docs"}})

	// A repository taken out of its installation is no longer served.
	w.gh.RemoveInstallationRepos(globex, "gitops")
	eventually(t, "globex/gitops no longer served", 30*time.Second, func() bool {
		return !slices.Contains(w.srv.Served(), "globex/gitops")
	})
}

// waitPromoted waits until every named plan is promoted.
func (w *world) waitPromoted(plans map[string][]string) {
	w.t.Helper()
	eventually(w.t, "plans promoted", 90*time.Second, func() bool {
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

// waitPlansCheck waits for the canarybot/plans check run on head, as the
// fake's check_run deliveries carry it.
func (w *world) waitPlansCheck(owner, name, head string) *gh.CheckRun {
	w.t.Helper()
	var found *gh.CheckRun
	eventually(w.t, "the canarybot/plans check on "+head[:8], 30*time.Second, func() bool {
		for _, d := range w.gh.Deliveries() {
			if d.Event != "check_run" || d.Action != "completed" {
				continue
			}
			var ev gh.CheckRunEvent
			if err := json.Unmarshal(d.Body, &ev); err != nil {
				w.t.Fatal(err)
			}
			cr := ev.GetCheckRun()
			if cr.GetName() == PlansCheck && cr.GetHeadSHA() == head && strings.EqualFold(ev.GetRepo().GetFullName(), owner+"/"+name) {
				found = cr
				return true
			}
		}
		return false
	})
	return found
}
