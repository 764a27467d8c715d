package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/utils/diff"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sergi/go-diff/diffmatchpatch"
	"github.com/spf13/cobra"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/redact"
)

func newPlan(g *globals) *cobra.Command {
	o := &reconcileOptions{}
	c := &cobra.Command{
		Use:   "plan --repo URL --dir DIR --plan PATH --prometheus URL --argocd-server HOST:PORT",
		Short: "Dry run: print the decision canarybot would take now and the exact diff it would commit; pushes nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			return o.dryRun(cmd.Context(), log, g.stdout)
		},
	}
	f := c.Flags()
	o.addFlags(f)
	o.addEngineFlags(f)
	f.BoolVar(&o.autoApprove, "auto-approve", false, "decide as if pause-until-approved steps were approved")
	for _, req := range append(requiredGitFlags(), "plan", "prometheus", "argocd-server") {
		_ = c.MarkFlagRequired(req)
	}
	return c
}

// dryRun ticks the plan once against a repository that shows the change
// instead of committing it.
func (o *reconcileOptions) dryRun(ctx context.Context, log *slog.Logger, out io.Writer) error {
	if err := o.checkPlan(); err != nil {
		return err
	}
	repo, err := o.open(ctx, log, "canarybot", "canarybot@users.noreply.github.com")
	if err != nil {
		return err
	}
	plan, err := currentPlan(ctx, repo, o.plan)
	if err != nil {
		return err
	}
	rec, err := newRecorder(prometheus.NewRegistry()) // counted, never served
	if err != nil {
		return err
	}
	ad, err := o.adapters(log, rec)
	if err != nil {
		return err
	}
	defer ad.close()
	dry := &dryRunRepo{Repo: repo, out: out}
	eng := ad.engine(dry, repo.Contains, log)
	eng.PlanPath = o.plan
	eng.Pipeline = repoStages{redact.URL(o.repos[0]): repo}
	eng.Approvals = &flagApprovals{auto: o.autoApprove, log: log}
	r, err := eng.Tick(ctx)
	if err != nil {
		return err
	}
	if dry.subject == "" {
		fmt.Fprintf(out, "%s: %s (%s); nothing to commit\n", plan.Metadata.Name, r.Decision.Action, redact.URL(r.Decision.Reason))
		return nil
	}
	fmt.Fprintf(out, "%s: would commit %q; nothing was pushed\n", plan.Metadata.Name, redact.URL(dry.subject))
	return nil
}

// dryRunRepo is a gitops.Repo whose Transact prints the change it would
// commit on the current head, and pushes nothing.
type dryRunRepo struct {
	*gitops.Repo
	out io.Writer
	// subject is the commit's subject once a change was shown.
	subject string
}

func (d *dryRunRepo) Transact(ctx context.Context, fn canary.TransactFunc) (canary.CommitResult, error) {
	t, err := d.Repo.Checkout(ctx)
	if err != nil {
		return canary.CommitResult{}, err
	}
	ch, err := fn(ctx, t)
	if err != nil || ch == nil {
		return canary.CommitResult{SHA: t.Head, NoOp: ch == nil}, err
	}
	msg, err := gitops.FormatMessage(ch)
	if err != nil {
		return canary.CommitResult{}, err
	}
	fmt.Fprintf(d.out, "would commit on %.12s:\n\n%s\n", t.Head, indent(redact.URL(msg)))
	paths := make([]string, 0, len(ch.Files))
	for p := range ch.Files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		old, err := canary.ReadRepoFile(t.FS, p, canary.MaxPlanBytes)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return canary.CommitResult{}, fmt.Errorf("read %s: %w", p, err)
		}
		if string(old) != string(ch.Files[p]) {
			printDiff(d.out, p, string(old), string(ch.Files[p]))
		}
	}
	d.subject = ch.Subject
	return canary.CommitResult{Pending: "dry run: nothing was pushed"}, nil
}

// printDiff prints a line diff of one file, as git diff does, without
// hunk headers.
func printDiff(out io.Writer, path, old, new string) {
	fmt.Fprintf(out, "--- a/%s\n+++ b/%s\n", path, path)
	for _, d := range diff.Do(old, new) {
		prefix := " "
		switch d.Type {
		case diffmatchpatch.DiffInsert:
			prefix = "+"
		case diffmatchpatch.DiffDelete:
			prefix = "-"
		}
		for _, line := range strings.SplitAfter(d.Text, "\n") {
			if line != "" {
				fmt.Fprint(out, prefix+strings.TrimSuffix(line, "\n")+"\n")
			}
		}
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
