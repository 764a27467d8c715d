package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// gitFlags are the GitOps repo flags of the commands that commit.
type gitFlags struct {
	repo, branch, dir, plan, gitTokenEnv string
}

func (g *gitFlags) addFlags(f *pflag.FlagSet) {
	f.StringVar(&g.repo, "repo", "", "GitOps repo URL: file://, a local path, or http(s):// (required)")
	f.StringVar(&g.branch, "branch", "main", "branch canarybot commits to")
	f.StringVar(&g.dir, "dir", "", "working clone, kept between runs (required)")
	f.StringVar(&g.plan, "plan", "", "repo path of the CanaryPlan (required)")
	f.StringVar(&g.gitTokenEnv, "git-token-env", "", "environment variable holding an http(s) git token")
}

// requiredGitFlags are the flags every committing command needs.
func requiredGitFlags() []string { return []string{"repo", "dir", "plan"} }

// checkPlan rejects a --plan that is not a safe repo path.
func (g *gitFlags) checkPlan() error {
	if err := canary.CheckRepoPath(g.plan); err != nil {
		return fmt.Errorf("--plan: %w", err)
	}
	return nil
}

// open opens the working clone; a zero author keeps gitops' default
// identity.
func (g *gitFlags) open(ctx context.Context, log *slog.Logger, authorName, authorEmail string) (*gitops.Repo, error) {
	opts := gitops.Options{URL: g.repo, Branch: g.branch, Dir: g.dir, Logger: log,
		AuthorName: authorName, AuthorEmail: authorEmail}
	if g.gitTokenEnv != "" {
		opts.Token = os.Getenv(g.gitTokenEnv)
	}
	return gitops.Open(ctx, opts)
}
