package statuspage

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// ErrNotFound marks a plan or repository the page does not know.
var ErrNotFound = errors.New("not found")

// Bounds of the timeline: the current rollout's transitions, and the
// earlier ones listed below it.
const (
	maxTransitions = 100
	maxEarlier     = 50
)

// rollout builds plan's rollout view, once per head.
func (s *snapshot) rollout(ctx context.Context, plan string) (*Rollout, error) {
	s.mu.Lock()
	r := s.rollouts[plan]
	s.mu.Unlock()
	if r != nil {
		return r, nil
	}
	i := slicesIndex(s.status.Rollouts, plan)
	if i < 0 {
		return nil, fmt.Errorf("%w: no plan or rollout %q in %s", ErrNotFound, plan, s.repo.Name)
	}
	hist, err := s.history(ctx)
	if err != nil {
		return nil, err
	}
	cur, earlier := splitRollout(hist[plan])
	r = &Rollout{RolloutSummary: s.status.Rollouts[i], Head: s.tree.Head, Transitions: []Transition{}, Gates: []Gate{}}
	var states []*canary.RolloutState
	for j := len(cur) - 1; j >= 0; j-- {
		st := s.stateAt(ctx, cur[j].SHA, plan)
		r.Transitions = append(r.Transitions, s.transition(cur[j], st))
		states = append(states, st)
	}
	for _, c := range earlier {
		r.Earlier = append(r.Earlier, s.transition(c, s.stateAt(ctx, c.SHA, plan)))
	}
	if err := ctx.Err(); err != nil {
		return nil, err // states may be missing: do not cache
	}
	p, _ := s.plan(plan)
	r.StepsPlan = stepsOf(p, r.RolloutSummary)
	if st := s.states[plan]; st != nil {
		r.Gates = gatesOf(p, st.Status.Gates)
	}
	r.Judges = judgeCharts(p, r.Transitions, states)
	s.mu.Lock()
	s.rollouts[plan] = r
	s.mu.Unlock()
	return r, nil
}

func slicesIndex(rs []RolloutSummary, plan string) int {
	for i, r := range rs {
		if r.Plan == plan {
			return i
		}
	}
	return -1
}

// splitRollout splits a plan's commits, newest first, at the newest
// start: the current (or last) rollout, and the ones before it.
func splitRollout(commits []gitops.Commit) (cur, earlier []gitops.Commit) {
	cur = commits
	for i, c := range commits {
		if a, _ := c.Trailer(canary.TrailerAction); a == string(canary.ActStart) {
			cur, earlier = commits[:i+1], commits[i+1:]
			break
		}
	}
	return cur[:min(len(cur), maxTransitions)], earlier[:min(len(earlier), maxEarlier)]
}

var (
	squashPR = regexp.MustCompile(`\(#([0-9]+)\)$`)
	mergePR  = regexp.MustCompile(`^Merge pull request #([0-9]+) `)
)

// transition shows commit c, which wrote state st (nil when unreadable).
func (s *snapshot) transition(c gitops.Commit, st *canary.RolloutState) Transition {
	action, _ := c.Trailer(canary.TrailerAction)
	step, _ := c.Trailer(canary.TrailerStep)
	author, _, _ := strings.Cut(c.Author, " <")
	t := Transition{Commit: c.SHA, Short: short(c.SHA), At: c.Time, Author: clean(author), Action: action,
		Subject: clean(c.Subject), Reason: clean(bodyReason(c.Message))}
	t.Step, _ = strconv.Atoi(step)
	if st != nil {
		t.Step, t.Weight, t.Reason = st.Status.StepIndex, st.Status.Weight, clean(st.Status.Reason)
		if st.Status.Phase == canary.PhasePromoted {
			t.Weight = 100 // the candidate became stable and takes all traffic
		}
	}
	if web := s.repo.Web; web != "" {
		t.URL = web + "/commit/" + c.SHA
		m := squashPR.FindStringSubmatch(c.Subject)
		if m == nil {
			m = mergePR.FindStringSubmatch(c.Subject)
		}
		if m != nil {
			t.PR, _ = strconv.Atoi(m[1])
			t.PRURL = fmt.Sprintf("%s/pull/%d", web, t.PR)
		}
	}
	return t
}

// bodyReason is the first line of a transition commit's body, where the
// engine writes the decision's reason.
func bodyReason(msg string) string {
	paras := strings.Split(strings.TrimSpace(strings.ReplaceAll(msg, "\r\n", "\n")), "\n\n")
	if len(paras) < 3 { // subject, body, trailers
		return ""
	}
	line, _, _ := strings.Cut(paras[1], "\n")
	return strings.TrimSpace(line)
}

// stepsOf lists the plan's steps, marking where the rollout is.
func stepsOf(p *canary.CanaryPlan, sum RolloutSummary) []StepView {
	if p == nil {
		return nil
	}
	var out []StepView
	for i, st := range p.Spec.Steps {
		status := "to come"
		switch {
		case sum.Phase == canary.PhaseReverted && i < sum.Step:
			status = "done"
		case sum.Phase == canary.PhaseReverted && i == sum.Step:
			status = "reverted here"
		case sum.Phase == canary.PhaseReverted:
			status = "not reached"
		case sum.Phase == canary.PhasePromoted || (sum.Active() && i < sum.Step):
			status = "done"
		case sum.Phase == canary.PhasePaused && i == sum.Step:
			status = "held here"
		case sum.Active() && i == sum.Step:
			status = "current"
		case !sum.Active():
			status = "not started"
		}
		out = append(out, StepView{Index: i, What: describeStep(st), Status: status})
	}
	return out
}
