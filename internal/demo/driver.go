package demo

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// driver plays the model team: once v2 is promoted it publishes v3, and it
// ends the demo when v3 has been reverted.
type driver struct {
	stack    *stack
	printer  *printer
	versions []version
	arts     []canary.Artifact
	done     func()

	pushedV3   bool
	finished   bool
	revertGate string
}

func (d *driver) onTick(r canary.Report) {
	s := r.State.Status
	if r.Decision.Action.Commits() && r.Commit.SHA != "" && !r.Commit.NoOp {
		d.printer.transition(r)
	}
	if s.Stable.URI == d.arts[1].URI && !d.pushedV3 {
		d.pushV3()
	}
	if d.pushedV3 && s.IsFailed(d.arts[2].URI) && s.Phase == canary.PhaseReverted {
		d.finished = true
		d.revertGate = lastGate(s)
		d.done()
	}
}

// resume publishes v3 before anything syncs when Git shows v2 already
// promoted: a restarted demo must serve what Git says.
func (d *driver) resume(ctx context.Context) error {
	t, err := d.stack.repo.Checkout(ctx)
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	b, err := canary.ReadRepoFile(t.FS, canary.StatePath("qwen"), canary.MaxPlanBytes)
	if err != nil {
		return fmt.Errorf("read state %s: %w", canary.StatePath("qwen"), err)
	}
	st, err := canary.ParseState(b)
	if err != nil {
		return err
	}
	if st.Status.Stable.URI == d.arts[1].URI {
		d.pushV3()
	}
	return nil
}

func (d *driver) pushV3() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v3 := d.versions[2]
	a, err := d.stack.reg.push(ctx, v3)
	if err != nil {
		d.printer.say("registry: push %s failed: %s (will retry)", v3.Tag, err)
		return
	}
	d.arts[2] = a
	if d.stack.cluster != nil {
		d.stack.cluster.register(a, v3)
	}
	d.pushedV3 = true
	d.printer.say("registry: pushed model %s as %s (40%% slower end to end)", v3.Tag, a.URI)
}

// lastGate is the gate named by the last revert in the history.
func lastGate(s canary.StateStatus) string {
	for i := len(s.History) - 1; i >= 0; i-- {
		h := s.History[i]
		if h.Action == string(canary.ActRevert) {
			if _, rest, ok := strings.Cut(h.Reason, "gate "); ok {
				name, _, _ := strings.Cut(rest, " ")
				return name
			}
			return "(" + h.Reason + ")"
		}
	}
	return "(none)"
}

// printer writes one line per event, stamped with time since start.
type printer struct {
	mu    sync.Mutex
	out   io.Writer
	clock canary.Clock
	start time.Time
}

func (p *printer) say(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "[%6.1fs] %s\n", p.clock.Now().Sub(p.start).Seconds(), fmt.Sprintf(format, args...))
}

func (p *printer) transition(r canary.Report) {
	s := r.State.Status
	art := s.Candidate.Version
	switch {
	case r.Decision.Action == canary.ActRevert && len(s.Failed) > 0:
		art = s.Failed[len(s.Failed)-1].Version
	case art == "":
		art = s.Stable.Version
	}
	var verdicts []string
	for _, g := range r.Decision.Gates {
		verdicts = append(verdicts, fmt.Sprintf("%s=%s(%s)", g.Gate, g.Verdict, g.Value))
	}
	gates := ""
	if len(verdicts) > 0 {
		gates = " gates[" + strings.Join(verdicts, " ") + "]"
	}
	p.say("%-8s %s step %d weight %3d%% %s%s commit %s — %s", r.Decision.Action, r.Plan, s.StepIndex,
		r.Decision.Weight, art, gates, short(r.Commit.SHA), r.Decision.Reason)
	p.judgeVerdicts(r.Decision.Gates, r.Decision.Reason)
}

// judgeVerdicts prints, under a transition, the verdict of every gate that
// is not a PromQL threshold, unless the decision's reason already says it:
// for the judge, each metric's ratio of canary to stable with its
// confidence bounds, the requests and the e-value.
func (p *printer) judgeVerdicts(gs []canary.GateResult, reason string) {
	for _, g := range gs {
		if g.Query != "" || g.Reason == "" || strings.Contains(reason, g.Reason) {
			continue
		}
		for part := range strings.SplitSeq(g.Reason, "; ") {
			p.say("           %s %s: %s", g.Gate, g.Verdict, part)
		}
	}
}

// autoApprover approves every step at once, saying so: the demo has no
// reviewer. With the GitHub App, a reviewer's PR approval does this.
type autoApprover struct {
	printer  *printer
	mu       sync.Mutex
	approved map[string]bool
}

func approvalKey(plan string, step int, c canary.Artifact) string {
	return fmt.Sprintf("%s/%d/%s", plan, step, c.URI)
}

func (a *autoApprover) Approved(_ context.Context, plan string, step int, c canary.Artifact) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.approved[approvalKey(plan, step, c)], nil
}

func (a *autoApprover) Request(_ context.Context, req canary.ApprovalRequest) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := approvalKey(req.Plan, req.Step, req.Candidate)
	if !a.approved[k] {
		a.approved[k] = true
		a.printer.say("approval %s step %d for %s: requested and auto-approved (demo has no reviewer)", req.Plan, req.Step, req.Candidate.Version)
	}
	return nil
}

// printLog prints the GitOps repo's history with its trailers.
func printLog(ctx context.Context, out io.Writer, dir string) error {
	r, err := gitops.OpenReadOnly(ctx, gitops.Options{URL: dir + "/gitops.git", Branch: branch})
	if err != nil {
		return fmt.Errorf("open gitops repo: %w", err)
	}
	head, err := r.Head(ctx)
	if err != nil {
		return fmt.Errorf("read head: %w", err)
	}
	commits, err := r.Log(ctx, head, 0)
	if err != nil {
		return fmt.Errorf("git log: %w", err)
	}
	fmt.Fprintf(out, "\n$ git log   # %s/gitops.git, newest first\n", dir)
	for _, c := range commits {
		fmt.Fprintf(out, "%s %s\n", short(c.SHA), c.Subject)
		for _, t := range c.Trailers {
			fmt.Fprintf(out, "             %s: %s\n", t.Key, t.Value)
		}
	}
	return nil
}

func hostPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Host
}

func short(sha string) string {
	if len(sha) > 10 {
		return sha[:10]
	}
	return sha
}
