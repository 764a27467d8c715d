package fakegithub

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-github/v60/github"
)

// Webhook payloads, built from go-github's event types. Every event
// carries installation {id, node_id} (the installation covering the
// repository), repository and sender, as GitHub sends them to an App.
// Events about a repository no installation covers are not delivered.

func (s *Server) emitPull(ctx context.Context, r *repo, p *pull, action string, sender *account) {
	s.emitPullEvent(ctx, r, p, action, sender, nil, "")
}

// emitPullEvent sends pull_request; label is set for labeled and
// unlabeled, before (the previous head) for synchronize.
func (s *Server) emitPullEvent(ctx context.Context, r *repo, p *pull, action string, sender *account, label *github.Label, before string) {
	in := s.hookInstallation(r)
	if in == nil {
		return
	}
	pr, err := s.pullJSON(ctx, r, p, false)
	if err != nil {
		s.log.Warn("render pull request for a webhook", "pr", p.number, "err", err)
		return
	}
	ev := &github.PullRequestEvent{Action: github.String(action), Number: github.Int(p.number), PullRequest: pr,
		Repo: s.repository(r), Sender: s.user(sender), Installation: in, Label: label}
	if action == "synchronize" {
		ev.Before, ev.After = github.String(before), github.String(p.headSHA)
	}
	s.emit("pull_request", action, ev)
}

func (s *Server) emitLabel(ctx context.Context, r *repo, n int, name, action string, sender *account) {
	s.emitPullEvent(ctx, r, r.pulls[n], action, sender, r.labels[name], "")
}

// emitReview sends pull_request_review submitted. Webhooks carry the
// review state in lower case ("approved"), unlike the REST API.
func (s *Server) emitReview(ctx context.Context, r *repo, p *pull, rv *github.PullRequestReview, sender *account) {
	in := s.hookInstallation(r)
	if in == nil {
		return
	}
	pr, err := s.pullJSON(ctx, r, p, false)
	if err != nil {
		s.log.Warn("render pull request for a webhook", "pr", p.number, "err", err)
		return
	}
	hooked := *rv
	hooked.State = github.String(strings.ToLower(rv.GetState()))
	s.emit("pull_request_review", "submitted", &github.PullRequestReviewEvent{Action: github.String("submitted"),
		Review: &hooked, PullRequest: pr, Repo: s.repository(r), Sender: s.user(sender), Installation: in})
}

func (s *Server) emitComment(_ context.Context, r *repo, n int, c *github.IssueComment, action string, sender *account) {
	in := s.hookInstallation(r)
	if in == nil {
		return
	}
	s.emit("issue_comment", action, &github.IssueCommentEvent{Action: github.String(action), Issue: s.issueJSON(r, n),
		Comment: c, Repo: s.repository(r), Sender: s.user(sender), Installation: in})
}

func (s *Server) emitCheckRun(_ context.Context, r *repo, cr *checkRun, action string, sender *account) {
	in := s.hookInstallation(r)
	if in == nil {
		return
	}
	s.emit("check_run", action, &github.CheckRunEvent{Action: github.String(action), CheckRun: s.withPulls(r, cr),
		Repo: s.repository(r), Sender: s.user(sender), Installation: in})
}

// registryPackageEvent is GitHub's registry_package webhook, which
// go-github v60 has no type for.
type registryPackageEvent struct {
	Action          string               `json:"action"`
	RegistryPackage registryPackage      `json:"registry_package"`
	Repository      *github.Repository   `json:"repository"`
	Sender          *github.User         `json:"sender"`
	Installation    *github.Installation `json:"installation"`
}

type registryPackage struct {
	ID             int64             `json:"id"`
	Name           string            `json:"name"`
	Namespace      string            `json:"namespace"`
	Description    *string           `json:"description"`
	Ecosystem      string            `json:"ecosystem"`
	PackageType    string            `json:"package_type"`
	HTMLURL        string            `json:"html_url"`
	CreatedAt      *github.Timestamp `json:"created_at"`
	UpdatedAt      *github.Timestamp `json:"updated_at"`
	Owner          *github.User      `json:"owner"`
	Registry       map[string]string `json:"registry"`
	PackageVersion packageVersion    `json:"package_version"`
}

type packageVersion struct {
	ID                  int64             `json:"id"`
	Version             string            `json:"version"`
	Name                string            `json:"name"`
	Description         string            `json:"description"`
	Summary             string            `json:"summary"`
	HTMLURL             string            `json:"html_url"`
	PackageURL          string            `json:"package_url"`
	InstallationCommand string            `json:"installation_command"`
	Metadata            []any             `json:"metadata"`
	PackageFiles        []any             `json:"package_files"`
	ContainerMetadata   containerMetadata `json:"container_metadata"`
	Author              *github.User      `json:"author"`
	CreatedAt           *github.Timestamp `json:"created_at"`
	UpdatedAt           *github.Timestamp `json:"updated_at"`
}

type containerMetadata struct {
	Tag struct {
		Name   string `json:"name"`
		Digest string `json:"digest"`
	} `json:"tag"`
	Labels   map[string]any `json:"labels"`
	Manifest map[string]any `json:"manifest"`
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// PublishPackage emits registry_package published for container image
// ghcr.io/<owner>/<pkg>:<tag> at digest (sha256:<64 hex>), as GitHub does
// when a version is pushed to GHCR. The package belongs to repository
// owner/pkg when it exists, else to the owner's first repository; when
// no installation covers that repository nothing is delivered.
func (s *Server) PublishPackage(owner, pkg, tag, digest string) error {
	if !digestRE.MatchString(digest) {
		return fmt.Errorf("digest %q is not sha256:<64 lower-case hex>", digest)
	}
	if pkg == "" || tag == "" {
		return fmt.Errorf("package %q and tag %q must not be empty", pkg, tag)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoKey(owner, pkg)]
	for _, cand := range s.repoOrder {
		if r == nil && strings.EqualFold(cand.owner, owner) {
			r = cand
		}
	}
	if r == nil {
		return fmt.Errorf("owner %q has no repository to link package %s to", owner, pkg)
	}
	in := s.hookInstallation(r)
	if in == nil {
		return nil
	}
	now, who := ghTime(s.now()), s.owner(r.owner)
	image := "ghcr.io/" + strings.ToLower(r.owner) + "/" + pkg
	v := packageVersion{ID: s.id(), Version: digest, Name: digest,
		HTMLURL:    s.apiURL(fmt.Sprintf("/%s/%s/pkgs/container/%s", r.owner, r.name, pkg)),
		PackageURL: image + ":" + tag, InstallationCommand: "docker pull " + image + ":" + tag,
		Metadata: []any{}, PackageFiles: []any{}, Author: who, CreatedAt: now, UpdatedAt: now}
	v.ContainerMetadata.Tag.Name, v.ContainerMetadata.Tag.Digest = tag, digest
	v.ContainerMetadata.Labels, v.ContainerMetadata.Manifest = map[string]any{}, map[string]any{}
	ev := &registryPackageEvent{Action: "published", Repository: s.repository(r), Sender: who,
		Installation: in,
		RegistryPackage: registryPackage{ID: s.id(), Name: pkg, Namespace: r.owner, Ecosystem: "CONTAINER",
			PackageType: "CONTAINER", HTMLURL: s.apiURL("/" + r.owner + "/packages/container/package/" + pkg),
			CreatedAt: now, UpdatedAt: now, Owner: who, PackageVersion: v,
			Registry: map[string]string{"about_url": "https://docs.github.com/packages/learn-github-packages/introduction-to-github-packages",
				"name": "GitHub CR", "type": "docker", "url": "https://ghcr.io/" + strings.ToLower(r.owner), "vendor": "GitHub Inc"}}}
	s.emit("registry_package", "published", ev)
	return nil
}
