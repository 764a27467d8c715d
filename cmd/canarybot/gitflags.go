package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/pflag"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/redact"
)

// gitFlags are the GitOps repo flags of the commands that commit.
type gitFlags struct {
	repos                          []string
	branch, dir, plan, gitTokenEnv string
}

func (g *gitFlags) addFlags(f *pflag.FlagSet) {
	f.StringArrayVar(&g.repos, "repo", nil, "GitOps repo URL: file://, a local path, or http(s):// (required)")
	f.StringVar(&g.branch, "branch", "main", "branch canarybot commits to")
	f.StringVar(&g.dir, "dir", "", "working clone, kept between runs (required)")
	f.StringVar(&g.plan, "plan", "", "repo path of the CanaryPlan")
	f.StringVar(&g.gitTokenEnv, "git-token-env", "", "environment variable holding an http(s) git token")
}

// requiredGitFlags are the flags every committing command needs.
func requiredGitFlags() []string { return []string{"repo", "dir"} }

// repo is the one --repo of commands that take one.
func (g *gitFlags) repo() (string, error) {
	if len(g.repos) != 1 {
		return "", fmt.Errorf("--repo: give it once, got %d", len(g.repos))
	}
	return g.repos[0], nil
}

// checkPlan rejects a --plan that is not a safe repo path.
func (g *gitFlags) checkPlan() error {
	if err := canary.CheckRepoPath(g.plan); err != nil {
		return fmt.Errorf("--plan: %w", err)
	}
	return nil
}

// open opens the working clone of the one --repo; a zero author keeps
// gitops' default identity.
func (g *gitFlags) open(ctx context.Context, log *slog.Logger, authorName, authorEmail string) (*gitops.Repo, error) {
	url, err := g.repo()
	if err != nil {
		return nil, err
	}
	return g.openAt(ctx, log, url, g.dir, authorName, authorEmail)
}

func (g *gitFlags) openAt(ctx context.Context, log *slog.Logger, url, dir, authorName, authorEmail string) (*gitops.Repo, error) {
	opts := gitops.Options{URL: url, Branch: g.branch, Dir: dir, Logger: log,
		AuthorName: authorName, AuthorEmail: authorEmail}
	if g.gitTokenEnv != "" {
		opts.Token = os.Getenv(g.gitTokenEnv)
	}
	return gitops.Open(ctx, opts)
}

// cloneDirs gives each --repo its own clone under --dir, named after the
// repository (credentials never reach the name) with a hash that keeps
// two similar URLs apart. The same URL always gets the same directory.
func (g *gitFlags) cloneDirs() (map[string]string, error) {
	if len(g.repos) == 0 {
		return nil, errors.New("--repo is required")
	}
	dirs, seen := map[string]string{}, map[string]bool{}
	for _, u := range g.repos {
		if seen[redact.URL(u)] {
			return nil, fmt.Errorf("--repo %s: given twice", redact.URL(u))
		}
		seen[redact.URL(u)] = true
		sum := sha256.Sum256([]byte(u))
		dirs[u] = filepath.Join(g.dir, repoLabel(u)+"-"+hex.EncodeToString(sum[:4]))
	}
	return dirs, nil
}

var unsafeLabel = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// repoLabel is a short, credential-free name for a repository URL or path:
// its last two path elements, without .git.
func repoLabel(u string) string {
	s := redact.URL(u)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSuffix(strings.Trim(s, "/"), ".git")
	parts := strings.Split(s, "/")
	if len(parts) > 2 {
		parts = parts[len(parts)-2:]
	}
	label := strings.Trim(unsafeLabel.ReplaceAllString(strings.Join(parts, "_"), "-"), "-.")
	if label == "" {
		return "repo"
	}
	return label
}
