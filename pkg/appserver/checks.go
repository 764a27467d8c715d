package appserver

import (
	"context"
	"fmt"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/canarybot/canarybot/pkg/canary"
)

// PlansCheck is the check run canarybot puts on a commit whose plans
// changed validity: failure, listing every invalid plan with its file and
// errors, on the commit that broke one; success on the commit that fixed
// them all.
const PlansCheck = "canarybot/plans"

// OnCatalog posts the canarybot/plans check when the set of problems of
// a served repository changed; set it as the fleet's OnCatalog. The first
// catalog after a start is posted only when it has problems.
func (s *Server) OnCatalog(full string, c *canary.Catalog) {
	text := problems(c)
	s.mu.Lock()
	sv := s.repos[key(full)]
	ctx := s.ctx
	if sv == nil || sv.checked == text || ctx == nil {
		s.mu.Unlock()
		return
	}
	sv.checked = text
	s.mu.Unlock()
	// Off the fleet's loop: a slow GitHub must not delay the plans.
	go func() {
		if err := s.postPlansCheck(ctx, sv, c.Head, text); err != nil && ctx.Err() == nil {
			s.mu.Lock()
			if sv.checked == text {
				sv.checked = "" // post again at the next fetch
			}
			s.mu.Unlock()
			s.cfg.Log.Warn("cannot post the plans check; retrying at the next fetch", "repo", full, "err", err)
		}
	}()
}

// problems is the markdown list of a catalog's problems, "" when none.
func problems(c *canary.Catalog) string {
	var b strings.Builder
	if c.ConfigErr != nil {
		fmt.Fprintf(&b, "- `%s`:\n%s", canary.ConfigPath, indentErrors(c.ConfigErr))
	}
	for _, p := range c.Invalid {
		fmt.Fprintf(&b, "- `%s`:\n%s", p.Where(), indentErrors(p.Err))
	}
	if b.Len() == 0 {
		return ""
	}
	return b.String()
}

func indentErrors(err error) string {
	var b strings.Builder
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			fmt.Fprintf(&b, "  - %s\n", line)
		}
	}
	return b.String()
}

func (s *Server) postPlansCheck(ctx context.Context, sv *served, head, text string) error {
	conclusion, title, summary := "success", "every plan is valid", "canarybot drives every plan of this commit."
	if text != "" {
		n := strings.Count(text, "\n- `") + 1
		conclusion, title = "failure", fmt.Sprintf("%d plan file(s) invalid", n)
		summary = "canarybot does not drive these plans until they are fixed; the other plans go on.\n\n" + text
	}
	_, _, err := sv.sess.REST.Checks.CreateCheckRun(ctx, sv.info.Owner, sv.info.Name, gh.CreateCheckRunOptions{
		Name: PlansCheck, HeadSHA: head, Status: gh.String("completed"), Conclusion: gh.String(conclusion),
		CompletedAt: &gh.Timestamp{Time: time.Now()},
		Output:      &gh.CheckRunOutput{Title: gh.String(title), Summary: gh.String(summary)},
	})
	if err != nil {
		return fmt.Errorf("create check run %s on %s: %w", PlansCheck, head, err)
	}
	return nil
}
