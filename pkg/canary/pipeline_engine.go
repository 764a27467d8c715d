package canary

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// StageReader reads the repositories in which upstream pipeline stages
// live, other than the plan's own.
type StageReader interface {
	// StageRepo returns repository repo (owner/name), read-only. A
	// repository this canarybot does not serve is an error wrapping
	// ErrRepoNotServed.
	StageRepo(ctx context.Context, repo string) (StageRepo, error)
}

// StageRepo is a repository holding upstream stages, read-only.
type StageRepo interface {
	// Tree returns rev, "" for the branch head as last fetched.
	Tree(ctx context.Context, rev string) (Tree, error)
	// LastCommit and CommitTime are as Repo's.
	LastCommit(ctx context.Context, head string, paths ...string) (string, error)
	CommitTime(ctx context.Context, sha string) (time.Time, error)
}

// ErrRepoNotServed marks a fromPlan repository canarybot cannot read.
var ErrRepoNotServed = errors.New("repository is not served by this canarybot")

// candidate observes the artifact the plan may propose: its upstream
// stage's offer for a fromPlan source read through Pipeline, else the
// registry's newest.
func (e *Engine) candidate(ctx context.Context, t Tree, plan *CanaryPlan, obs *Observations) error {
	src := plan.Spec.Model.Source.FromPlan
	if src == nil || e.Pipeline == nil {
		var err error
		if obs.Candidate, err = e.Artifacts.Latest(ctx, plan); err != nil {
			return fmt.Errorf("look up artifacts: %w", err)
		}
		return nil
	}
	chain, offer, err := e.upstreams(ctx, t, plan)
	if err != nil {
		return fmt.Errorf("read upstream stages of %s: %w", plan.Metadata.Name, err)
	}
	if offer == nil {
		o := OfferFromUpstream(*src, chain, e.Clock.Now())
		offer = &o
	}
	obs.Upstream, obs.Candidate = offer, offer.Candidate
	return nil
}

// upstreams walks plan's pipeline up from its direct upstream, reading
// each stage's plan and state from Git: the plan's own repository at t,
// others through Pipeline. When a stage cannot be used yet (its plan is
// invalid) it returns an offer saying so instead.
func (e *Engine) upstreams(ctx context.Context, t Tree, plan *CanaryPlan) ([]Stage, *UpstreamOffer, error) {
	w := stageWalk{e: e, own: t, catalogs: map[string]*Catalog{}, trees: map[string]Tree{}, repos: map[string]StageRepo{}}
	var chain []Stage
	path := []string{plan.Metadata.Name}
	seen := map[string]bool{Stage{Plan: plan.Metadata.Name}.String(): true}
	cur, repo := plan, ""
	for src := cur.Spec.Model.Source.FromPlan; src != nil; src = cur.Spec.Model.Source.FromPlan {
		if src.Repository != "" {
			repo = src.Repository
		}
		st := Stage{Repository: repo, Plan: src.Name}
		path = append(path, st.String())
		switch {
		case seen[st.String()]:
			return nil, nil, Terminalf("spec.model.source.fromPlan: cycle %s", strings.Join(path, " → "))
		case len(chain) >= MaxPipelineStages:
			return nil, nil, Terminalf("spec.model.source.fromPlan: more than %d upstream stages: %s",
				MaxPipelineStages, strings.Join(path, " → "))
		}
		seen[st.String()] = true
		t, c, err := w.read(ctx, repo)
		if err != nil {
			return nil, nil, err
		}
		up, ok := c.Lookup(src.Name)
		if !ok {
			if p, bad := c.Problem(src.Name); bad {
				return nil, &UpstreamOffer{Reason: fmt.Sprintf("upstream %s is invalid (%s): %s", st, p.Where(),
					strings.ReplaceAll(p.Err.Error(), "\n", "; "))}, nil
			}
			return nil, nil, Terminalf("spec.model.source.fromPlan: no plan %s (%s)", st, strings.Join(path, " → "))
		}
		if st.State, err = ReadState(t, src.Name); err != nil {
			return nil, nil, fmt.Errorf("stage %s: %w", st, err)
		}
		if len(chain) == 0 {
			if st.PromotionLanded, err = w.landed(ctx, repo, t, st); err != nil {
				return nil, nil, fmt.Errorf("stage %s: %w", st, err)
			}
		}
		chain = append(chain, st)
		cur = up
	}
	return chain, nil, nil
}

// stageWalk reads each repository of a pipeline once per tick.
type stageWalk struct {
	e        *Engine
	own      Tree
	catalogs map[string]*Catalog
	trees    map[string]Tree
	repos    map[string]StageRepo
}

// landed is when the commit that recorded st's promotion landed, while st
// is still promoted (its state file unchanged since): a promotion merged
// as a pull request later than decided soaks from its merge. Zero when
// unknown.
func (w *stageWalk) landed(ctx context.Context, repo string, t Tree, st Stage) (time.Time, error) {
	if st.State == nil || st.State.Status.Phase != PhasePromoted {
		return time.Time{}, nil
	}
	var h interface {
		LastCommit(ctx context.Context, head string, paths ...string) (string, error)
		CommitTime(ctx context.Context, sha string) (time.Time, error)
	} = w.e.Repo
	if repo != "" {
		h = w.repos[repo]
	}
	sha, err := h.LastCommit(ctx, t.Head, StatePath(st.Plan))
	if err != nil || sha == "" {
		return time.Time{}, err
	}
	at, err := h.CommitTime(ctx, sha)
	if err != nil {
		return time.Time{}, fmt.Errorf("read time of %s: %w", short(sha), err)
	}
	return at, nil
}

// read returns repository repo's tree and plan catalog; "" is the plan's
// own repository at the tick's revision.
func (w *stageWalk) read(ctx context.Context, repo string) (Tree, *Catalog, error) {
	if c, ok := w.catalogs[repo]; ok {
		return w.trees[repo], c, nil
	}
	t := w.own
	if repo != "" {
		r, err := w.e.Pipeline.StageRepo(ctx, repo)
		if errors.Is(err, ErrRepoNotServed) {
			return Tree{}, nil, Terminal(fmt.Errorf("spec.model.source.fromPlan.repository %s: %w", repo, err))
		}
		if err == nil {
			t, err = r.Tree(ctx, "")
		}
		if err != nil {
			return Tree{}, nil, fmt.Errorf("read repository %s: %w", repo, err)
		}
		w.repos[repo] = r
	}
	var c *Catalog
	var err error
	if repo == "" && w.e.Plans != nil {
		c, err = w.e.Plans(ctx, t)
	} else {
		c, err = Discover(t)
	}
	if err != nil {
		return Tree{}, nil, fmt.Errorf("discover plans of %s at %s: %w", orOwn(repo), short(t.Head), err)
	}
	w.trees[repo], w.catalogs[repo] = t, c
	return t, c, nil
}

func orOwn(repo string) string {
	if repo == "" {
		return "this repository"
	}
	return repo
}
