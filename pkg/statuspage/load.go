package statuspage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/redact"
)

// Source is the Git a page reads: a *gitops.Reader, or the *gitops.Repo
// clone a running bot keeps. Tree(ctx, "") is the branch head as last
// fetched; the page never fetches on its own.
type Source interface {
	Tree(ctx context.Context, rev string) (canary.Tree, error)
	Log(ctx context.Context, head string, limit int) ([]gitops.Commit, error)
}

// Repo is one repository a page shows.
type Repo struct {
	// Name identifies the repository on the page and in ?repo=: OWNER/NAME,
	// or a URL without credentials.
	Name string
	Git  Source
	// Web is the repository's page on GitHub (https://github.com/OWNER/NAME)
	// for links to commits and pull requests; empty for none.
	Web string
}

// maxLogCommits bounds the history walked for a rollout's timeline.
const maxLogCommits = 20000

// snapshot is what the page reads of one repository at one head. It is
// built once per head and shared; the timelines are read on first need.
type snapshot struct {
	repo   Repo
	tree   canary.Tree
	cat    *canary.Catalog // nil when the repo keeps no discoverable plans
	status RepoStatus
	states map[string]*canary.RolloutState

	histMu sync.Mutex
	hist   map[string][]gitops.Commit // by plan, newest first

	mu       sync.Mutex
	rollouts map[string]*Rollout
}

// readSnapshot reads a repository's plans and rollout states in t, its
// branch head; plan files already decoded are taken from plans.
func readSnapshot(r Repo, t canary.Tree, plans *canary.PlanCache) (*snapshot, error) {
	s := &snapshot{repo: r, tree: t, states: map[string]*canary.RolloutState{}, rollouts: map[string]*Rollout{},
		status: RepoStatus{Repo: r.Name, Head: t.Head, Rollouts: []RolloutSummary{}}}
	cat, err := canary.DiscoverCached(t, plans)
	if err != nil {
		return nil, fmt.Errorf("discover plans of %s at %s: %w", r.Name, short(t.Head), err)
	}
	if len(cat.Plans)+len(cat.Invalid) > 0 || cat.ConfigErr != nil {
		s.cat = cat
		s.status.PlansDir = cat.PlansDir
		if cat.ConfigErr != nil {
			s.status.ConfigError = clean(cat.ConfigErr.Error())
		}
		for _, p := range cat.Invalid {
			s.status.Invalid = append(s.status.Invalid, InvalidPlan{Where: p.Where(), Name: p.Name, Error: clean(p.Err.Error())})
		}
	}
	names, err := statePlans(t)
	if err != nil {
		return nil, fmt.Errorf("list rollouts of %s: %w", r.Name, err)
	}
	for _, name := range names {
		st, err := canary.ReadState(t, name)
		sum := s.summary(name, st)
		if err != nil {
			sum.Phase, sum.Reason = "Unreadable", clean(err.Error())
		} else {
			s.states[name] = st
		}
		s.status.Rollouts = append(s.status.Rollouts, sum)
	}
	if s.cat != nil {
		for _, e := range s.cat.Plans {
			if name := e.Plan.Metadata.Name; !slices.Contains(names, name) {
				s.status.Rollouts = append(s.status.Rollouts, s.summary(name, nil))
			}
		}
	}
	slices.SortFunc(s.status.Rollouts, func(a, b RolloutSummary) int { return strings.Compare(a.Plan, b.Plan) })
	s.markPipelines()
	return s, nil
}

// statePlans lists the plans with a state file in t, sorted.
func statePlans(t canary.Tree) ([]string, error) {
	entries, err := fs.ReadDir(t.FS, canary.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".yaml")
		if ok && !e.IsDir() && gitops.ValidatePlanName(name) == nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// plan returns the valid plan named name and its file.
func (s *snapshot) plan(name string) (*canary.CanaryPlan, string) {
	if s.cat == nil {
		return nil, ""
	}
	for _, e := range s.cat.Plans {
		if e.Plan.Metadata.Name == name {
			return e.Plan, canary.PlanProblem{Path: e.Path, Doc: e.Doc}.Where()
		}
	}
	return nil, ""
}

// summary is the fleet view's line for plan, whose state is st (nil when
// it has none yet).
func (s *snapshot) summary(name string, st *canary.RolloutState) RolloutSummary {
	sum := RolloutSummary{Repo: s.repo.Name, Plan: name, PlanState: PlanUnknown, Phase: PhaseWaiting}
	plan, where := s.plan(name)
	switch {
	case plan != nil:
		sum.PlanState, sum.PlanPath, sum.Steps = PlanDriven, where, len(plan.Spec.Steps)
	case s.cat == nil:
	default:
		sum.PlanState = PlanDeleted
		if p, ok := s.cat.Problem(name); ok {
			sum.PlanState, sum.PlanPath, sum.PlanError = PlanInvalid, p.Where(), clean(p.Err.Error())
		}
	}
	if st == nil {
		return sum
	}
	a := st.Status
	sum.Phase, sum.Step, sum.Weight, sum.Reason = a.Phase, a.StepIndex, a.Weight, clean(a.Reason)
	sum.Stable, sum.Canary = artifactView(a.Stable), artifactView(a.Candidate)
	for _, f := range a.Failed {
		sum.Failed = append(sum.Failed, artifactView(f))
	}
	sum.RolloutStartedAt, sum.StepStartedAt = a.RolloutStartedAt, a.StepStartedAt
	if n := len(a.History); n > 0 {
		sum.LastAction, sum.LastAt = a.History[n-1].Action, a.History[n-1].At
	}
	if plan != nil && sum.Active() && a.StepIndex < len(plan.Spec.Steps) {
		sum.StepName = describeStep(plan.Spec.Steps[a.StepIndex])
	}
	return sum
}

// history groups the commits that carry canarybot's plan trailer by plan,
// newest first, walking the log once per head. A failed walk (a cancelled
// request, say) is not remembered.
func (s *snapshot) history(ctx context.Context) (map[string][]gitops.Commit, error) {
	s.histMu.Lock()
	defer s.histMu.Unlock()
	if s.hist != nil {
		return s.hist, nil
	}
	commits, err := s.repo.Git.Log(ctx, s.tree.Head, maxLogCommits)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", s.repo.Name, err)
	}
	hist := map[string][]gitops.Commit{}
	for _, c := range commits {
		if p, ok := c.Trailer(canary.TrailerPlan); ok {
			hist[p] = append(hist[p], c)
		}
	}
	s.hist = hist
	return hist, nil
}

// clean hides credentials and keeps text on one line.
func clean(s string) string {
	return strings.ReplaceAll(redact.URL(s), "\n", "; ")
}

func short(sha string) string {
	if len(sha) > 10 {
		return sha[:10]
	}
	return sha
}

// stateAt reads plan's state as commit sha wrote it, or nil.
func (s *snapshot) stateAt(ctx context.Context, sha, plan string) *canary.RolloutState {
	t, err := s.repo.Git.Tree(ctx, sha)
	if err != nil {
		return nil
	}
	st, err := canary.ReadState(t, plan)
	if err != nil {
		return nil
	}
	return st
}
