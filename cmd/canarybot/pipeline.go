package main

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/canarybot/canarybot/pkg/appserver"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// repoStages reads the upstream pipeline stages that live in another
// --repo of this reconcile: fromPlan.repository owner/name names the
// --repo whose URL (or path), less a trailing .git, ends with /owner/name.
// It reads the clone as last fetched.
type repoStages map[string]*gitops.Repo // by redacted URL

var _ canary.StageReader = repoStages{}

// StageRepo implements canary.StageReader.
func (s repoStages) StageRepo(_ context.Context, repo string) (canary.StageRepo, error) {
	var hits []string
	for u := range s {
		if repoPathEnds(u, repo) {
			hits = append(hits, u)
		}
	}
	slices.Sort(hits)
	switch len(hits) {
	case 0:
		return nil, fmt.Errorf("%s: %w (no --repo ends with /%s)", repo, canary.ErrRepoNotServed, repo)
	case 1:
		return s[hits[0]], nil
	}
	return nil, canary.Terminalf("repository %s is ambiguous: --repo %s all end with it",
		repo, strings.Join(hits, ", "))
}

// repoPathEnds reports whether the repository at u (a URL or a local
// path) is owner/name: its path, less .git, ends with /owner/name.
func repoPathEnds(u, repo string) bool {
	p := u
	if parsed, err := url.Parse(u); err == nil && parsed.Scheme != "" {
		p = parsed.Path
	}
	p = strings.TrimSuffix(path.Clean("/"+strings.TrimSuffix(p, "/")), ".git")
	return strings.EqualFold(p, "/"+repo) || strings.HasSuffix(strings.ToLower(p), "/"+strings.ToLower(repo))
}

// servedStages reads upstream stages in the other repositories the GitHub
// App (or token) serves, from their clones as last fetched.
type servedStages struct{ srv *appserver.Server }

var _ canary.StageReader = servedStages{}

// StageRepo implements canary.StageReader.
func (s servedStages) StageRepo(_ context.Context, repo string) (canary.StageRepo, error) {
	r := s.srv.Local(repo)
	if r == nil {
		return nil, fmt.Errorf("%s: %w (not in this installation, or without a .canarybot/ directory)",
			repo, canary.ErrRepoNotServed)
	}
	return r, nil
}
