package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/fleet"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/metrics"
	"github.com/canarybot/canarybot/pkg/redact"
	"github.com/canarybot/canarybot/pkg/registry/notify"
)

// runFleet drives every plan of every --repo: one clone per repository,
// plans discovered from Git at each fetch, ticked on a shared worker pool.
func (o *reconcileOptions) runFleet(ctx context.Context, log *slog.Logger, rec *metrics.Recorder, out io.Writer) error {
	dirs, err := o.cloneDirs()
	if err != nil {
		return err
	}
	repos := map[string]*gitops.Repo{}
	for _, url := range o.repos {
		r, err := o.openAt(ctx, log, url, dirs[url], "canarybot", "canarybot@users.noreply.github.com")
		if err != nil {
			return err
		}
		repos[redact.URL(url)] = r
	}
	ad, err := o.adapters(log, rec)
	if err != nil {
		return err
	}
	defer ad.close()
	approvals := &flagApprovals{auto: o.autoApprove, log: log}
	nots := newNotifiers(log, rec, o.notifySecretsDir)
	for _, url := range o.repos {
		nots.add(redact.URL(url), remoteWeb(url), repos[redact.URL(url)], nil)
	}
	f, err := fleet.New(fleet.Config{Workers: o.workers, Poll: o.poll, MinPoll: o.minPoll,
		Clock: canary.SystemClock{}, Log: log,
		NewEngine: func(repo string, plan *canary.CanaryPlan) *canary.Engine {
			r := repos[repo]
			eng := ad.engine(r, r.Contains, log.With("repo", repo))
			eng.Approvals, eng.AfterTick = approvals, nots.afterTick(repo, rec.AfterTick(repo, plan.Metadata.Name))
			eng.Pipeline = repoStages(repos)
			return eng
		},
		OnCatalog: func(repo string, c *canary.Catalog) { rec.RetainCatalog(repo, c); nots.offer(ctx, repo, c) },
		OnRemove:  rec.Forget})
	if err != nil {
		return err
	}
	for name, r := range repos {
		if err := f.Add(name, r); err != nil {
			return err
		}
	}
	if o.once {
		nots.once(ctx) // a first run starts the cursors before this run's transitions
		defer nots.once(ctx)
		return printOnce(ctx, f, out)
	}
	if o.hooks.listen != "" {
		w := hookWaker{
			oci: func(path string) bool {
				return f.Wake(func(_ string, p *canary.CanaryPlan) bool {
					src := p.Spec.Model.Source.OCI
					return src != nil && notify.RepositoryPath(src.Repository) == path
				}) > 0
			},
			mlflow: func(model string) bool {
				return f.Wake(func(_ string, p *canary.CanaryPlan) bool {
					src := p.Spec.Model.Source.MLflow
					return src != nil && src.Model == model
				}) > 0
			},
		}
		o.hooks.status = reconciledRepos(repos, o.repos)
		if err := startHooks(ctx, o.hooks, nil, w, log); err != nil {
			return err
		}
	}
	nots.start(ctx)
	log.Info("serving plans", "repos", len(repos), "workers", o.workers, "poll", o.poll)
	return f.Run(ctx)
}

// printOnce ticks every plan once and prints one line per plan.
func printOnce(ctx context.Context, f *fleet.Fleet, out io.Writer) error {
	outcomes, err := f.Once(ctx)
	failed := 0
	for _, oc := range outcomes {
		switch {
		case oc.Err != nil:
			failed++
			fmt.Fprintf(out, "%s %s: error: %s\n", oc.Repo, oc.Plan, redact.URL(oneLine(oc.Err)))
		default:
			d := oc.Report.Decision
			fmt.Fprintf(out, "%s %s: %s (%s)\n", oc.Repo, oc.Plan, d.Action, redact.URL(d.Reason))
		}
	}
	if len(outcomes) == 0 && err == nil {
		fmt.Fprintln(out, "no valid plans found")
	}
	if failed > 0 {
		err = errors.Join(err, fmt.Errorf("%d of %d plans failed", failed, len(outcomes)))
	}
	return err
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
