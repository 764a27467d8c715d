package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v60/github"
)

// ErrIgnored marks a delivery canarybot does not act on (an unknown event
// or an action it ignores). The handler answers 202 and logs it.
var ErrIgnored = errors.New("ignored")

// Kinds of Event.
const (
	KindPackage     = "package"      // a container version was published
	KindReview      = "review"       // a pull request review was submitted
	KindPullRequest = "pull_request" // a pull request was closed or merged
	KindCheckRun    = "check_run"    // a check run was re-requested
	KindComment     = "comment"      // a comment was made on an issue or PR
	// KindInstallation: the App was installed on an account or removed
	// from it (Repos lists the repositories gained or lost).
	KindInstallation = "installation"
	// KindInstallationRepos: repositories were added to or removed from
	// an installation.
	KindInstallationRepos = "installation_repositories"
	KindPush              = "push" // commits were pushed to a branch
)

// Event is the part of a delivery canarybot acts on.
type Event struct {
	Kind     string
	Delivery string
	// Installation is the App installation the delivery belongs to.
	Installation int64
	// Owner and Repo name the repository the event happened in.
	Owner, Repo string
	// Sender is the login of the user who caused the event.
	Sender string

	Package     *Package
	PullRequest *PullRequest
	CheckRun    *CheckRun
	Comment     *Comment
	Repos       *Repos
	Push        *Push
}

// Repos is what an installation or installation_repositories delivery
// changed: repositories as OWNER/NAME.
type Repos struct {
	// Action is created, deleted, added or removed.
	Action  string
	Account string
	Added   []string
	Removed []string
}

// Push is a push to a branch.
type Push struct {
	Branch string
	// Head is the branch's new head commit.
	Head string
	// Paths are the files the pushed commits added, modified or removed,
	// as far as the payload lists them (GitHub lists up to 20 commits).
	Paths []string
	// Truncated is set when the payload may not list every commit.
	Truncated bool
}

// Package is a published container version.
type Package struct {
	// Repository is registry/namespace/name, e.g. ghcr.io/acme/qwen.
	Repository string
	Tag        string
	// Digest is the version's manifest digest, sha256:<hex>.
	Digest string
}

// PullRequest is a PR event: closed (Merged or not) or a review.
type PullRequest struct {
	Number int
	Branch string
	Merged bool
	// ReviewState is the submitted review's state (approved,
	// changes_requested, commented) on KindReview.
	ReviewState string
}

// CheckRun is a re-requested check run.
type CheckRun struct {
	ID         int64
	Name       string
	HeadSHA    string
	HeadBranch string
}

// Comment is a new issue or PR comment.
type Comment struct {
	ID     int64
	Issue  int
	IsPR   bool
	Body   string
	Author string
}

// Parse turns a delivery's event name and payload into an Event, or
// returns ErrIgnored for what canarybot does not act on, or a parse error.
func Parse(kind string, body []byte) (Event, error) {
	if kind == "registry_package" || kind == "package" {
		return parsePackage(kind, body)
	}
	raw, err := github.ParseWebHook(kind, body)
	if err != nil {
		if strings.Contains(err.Error(), "unknown X-Github-Event") {
			return Event{}, fmt.Errorf("%w: event %q", ErrIgnored, kind)
		}
		return Event{}, fmt.Errorf("parse %s payload: %w", kind, err)
	}
	switch e := raw.(type) {
	case *github.PullRequestReviewEvent:
		return reviewEvent(e)
	case *github.PullRequestEvent:
		return pullRequestEvent(e)
	case *github.CheckRunEvent:
		return checkRunEvent(e)
	case *github.IssueCommentEvent:
		return commentEvent(e)
	case *github.InstallationEvent:
		return installationEvent(e)
	case *github.InstallationRepositoriesEvent:
		return installationReposEvent(e)
	case *github.PushEvent:
		return pushEvent(e)
	}
	return Event{}, fmt.Errorf("%w: event %q", ErrIgnored, kind)
}

func base(kind string, inst *github.Installation, repo *github.Repository, sender *github.User) (Event, error) {
	ev := Event{Kind: kind, Installation: inst.GetID(), Sender: sender.GetLogin()}
	ev.Owner, ev.Repo = repo.GetOwner().GetLogin(), repo.GetName()
	if ev.Owner == "" || ev.Repo == "" {
		return ev, fmt.Errorf("%s payload has no repository owner and name", kind)
	}
	return ev, nil
}

func reviewEvent(e *github.PullRequestReviewEvent) (Event, error) {
	if e.GetAction() != "submitted" {
		return Event{}, fmt.Errorf("%w: pull_request_review action %q", ErrIgnored, e.GetAction())
	}
	ev, err := base(KindReview, e.Installation, e.Repo, e.Sender)
	if err != nil {
		return ev, err
	}
	ev.PullRequest = &PullRequest{Number: e.GetPullRequest().GetNumber(), Branch: e.GetPullRequest().GetHead().GetRef(),
		ReviewState: strings.ToLower(e.GetReview().GetState())}
	return ev, checkPR(ev.PullRequest)
}

func pullRequestEvent(e *github.PullRequestEvent) (Event, error) {
	if e.GetAction() != "closed" {
		return Event{}, fmt.Errorf("%w: pull_request action %q", ErrIgnored, e.GetAction())
	}
	ev, err := base(KindPullRequest, e.Installation, e.Repo, e.Sender)
	if err != nil {
		return ev, err
	}
	pr := e.GetPullRequest()
	ev.PullRequest = &PullRequest{Number: pr.GetNumber(), Branch: pr.GetHead().GetRef(), Merged: pr.GetMerged()}
	return ev, checkPR(ev.PullRequest)
}

func checkPR(pr *PullRequest) error {
	if pr.Number <= 0 || pr.Branch == "" {
		return errors.New("pull request payload has no number or head branch")
	}
	return nil
}

func checkRunEvent(e *github.CheckRunEvent) (Event, error) {
	if e.GetAction() != "rerequested" {
		return Event{}, fmt.Errorf("%w: check_run action %q", ErrIgnored, e.GetAction())
	}
	ev, err := base(KindCheckRun, e.Installation, e.Repo, e.Sender)
	if err != nil {
		return ev, err
	}
	cr := e.GetCheckRun()
	ev.CheckRun = &CheckRun{ID: cr.GetID(), Name: cr.GetName(), HeadSHA: cr.GetHeadSHA(), HeadBranch: cr.GetCheckSuite().GetHeadBranch()}
	if ev.CheckRun.Name == "" {
		return ev, errors.New("check_run payload has no name")
	}
	return ev, nil
}

func commentEvent(e *github.IssueCommentEvent) (Event, error) {
	if e.GetAction() != "created" {
		return Event{}, fmt.Errorf("%w: issue_comment action %q", ErrIgnored, e.GetAction())
	}
	ev, err := base(KindComment, e.Installation, e.Repo, e.Sender)
	if err != nil {
		return ev, err
	}
	c := e.GetComment()
	ev.Comment = &Comment{ID: c.GetID(), Issue: e.GetIssue().GetNumber(), IsPR: e.GetIssue().IsPullRequest(),
		Body: c.GetBody(), Author: c.GetUser().GetLogin()}
	if ev.Comment.ID == 0 || ev.Comment.Issue <= 0 || ev.Comment.Author == "" {
		return ev, errors.New("issue_comment payload has no comment id, issue number or author")
	}
	return ev, nil
}

// packagePayload is the part of a registry_package or package delivery
// canarybot reads (go-github has no type for registry_package).
type packagePayload struct {
	Action       string         `json:"action"`
	Registry     *packageObject `json:"registry_package"`
	Package      *packageObject `json:"package"`
	Installation struct {
		ID int64 `json:"id"`
	} `json:"installation"`
	Repository *github.Repository `json:"repository"`
	Sender     *github.User       `json:"sender"`
}

type packageObject struct {
	Name        string `json:"name"`
	Namespace   string `json:"namespace"`
	PackageType string `json:"package_type"`
	Ecosystem   string `json:"ecosystem"`
	Owner       struct {
		Login string `json:"login"`
	} `json:"owner"`
	Version *struct {
		Version           string `json:"version"`
		PackageURL        string `json:"package_url"`
		ContainerMetadata *struct {
			Tag struct {
				Name   string `json:"name"`
				Digest string `json:"digest"`
			} `json:"tag"`
		} `json:"container_metadata"`
	} `json:"package_version"`
}

func parsePackage(kind string, body []byte) (Event, error) {
	var p packagePayload
	if err := json.Unmarshal(body, &p); err != nil {
		return Event{}, fmt.Errorf("parse %s payload: %w", kind, err)
	}
	obj := p.Registry
	if kind == "package" {
		obj = p.Package
	}
	if p.Action != "published" {
		return Event{}, fmt.Errorf("%w: %s action %q", ErrIgnored, kind, p.Action)
	}
	if obj == nil || obj.Version == nil {
		return Event{}, fmt.Errorf("%s payload has no package or package_version", kind)
	}
	if t := strings.ToLower(obj.PackageType + obj.Ecosystem); !strings.Contains(t, "container") && !strings.Contains(t, "docker") {
		return Event{}, fmt.Errorf("%w: %s of type %q is not a container", ErrIgnored, kind, obj.PackageType)
	}
	ev := Event{Kind: KindPackage, Installation: p.Installation.ID, Sender: p.Sender.GetLogin()}
	ev.Owner, ev.Repo = p.Repository.GetOwner().GetLogin(), p.Repository.GetName()
	pkg := &Package{Digest: obj.Version.Version}
	if m := obj.Version.ContainerMetadata; m != nil {
		pkg.Tag = m.Tag.Name
		if m.Tag.Digest != "" {
			pkg.Digest = m.Tag.Digest
		}
	}
	if !isDigest(pkg.Digest) {
		return Event{}, fmt.Errorf("%s payload: version %q is not a sha256 digest; canarybot deploys only digests", kind, pkg.Digest)
	}
	repo, err := packageRepository(obj)
	if err != nil {
		return Event{}, fmt.Errorf("%s payload: %w", kind, err)
	}
	pkg.Repository = repo
	ev.Package = pkg
	return ev, nil
}

// packageRepository is host/namespace/name, from package_url when given.
func packageRepository(obj *packageObject) (string, error) {
	if u := obj.Version.PackageURL; u != "" {
		u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "oci://")
		if i := strings.Index(u, "@"); i >= 0 {
			u = u[:i]
		}
		if i := strings.LastIndex(u, ":"); i > strings.LastIndex(u, "/") {
			u = u[:i]
		}
		if strings.Count(u, "/") >= 2 {
			return strings.ToLower(u), nil
		}
	}
	ns := obj.Namespace
	if ns == "" {
		ns = obj.Owner.Login
	}
	if ns == "" || obj.Name == "" {
		return "", errors.New("package has no namespace (owner) or name")
	}
	return strings.ToLower("ghcr.io/" + ns + "/" + obj.Name), nil
}

func isDigest(s string) bool {
	hexPart, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hexPart) != 64 {
		return false
	}
	for _, c := range hexPart {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
