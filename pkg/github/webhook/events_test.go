package webhook

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

func repo() *github.Repository {
	return &github.Repository{Name: github.String("gitops"), Owner: &github.User{Login: github.String("acme")}}
}

func marshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func reviewPayload(state string) string {
	return marshal(&github.PullRequestReviewEvent{
		Action: github.String("submitted"), Repo: repo(), Sender: &github.User{Login: github.String("ana")},
		Installation: &github.Installation{ID: github.Int64(42)},
		Review:       &github.PullRequestReview{State: github.String(strings.ToUpper(state))},
		PullRequest: &github.PullRequest{Number: github.Int(7),
			Head: &github.PullRequestBranch{Ref: github.String("canarybot/qwen/5f2b9c0d1e3a")}},
	})
}

const digest = "sha256:5f2b9c0d1e3a5f2b9c0d1e3a5f2b9c0d1e3a5f2b9c0d1e3a5f2b9c0d1e3a5f2b"

// registryPackage is shaped as GitHub's registry_package "published"
// delivery for a GHCR container.
func registryPackage(version, packageURL string) string {
	return `{"action":"published","registry_package":{"id":1,"name":"qwen","namespace":"Acme","ecosystem":"CONTAINER",
"package_type":"CONTAINER","owner":{"login":"Acme"},"package_version":{"id":9,"version":"` + version + `",
"package_url":"` + packageURL + `","container_metadata":{"tag":{"name":"v2","digest":"` + version + `"}}}},
"repository":{"name":"gitops","owner":{"login":"acme"}},"installation":{"id":42},"sender":{"login":"ci-bot"}}`
}

func TestParse(t *testing.T) {
	cases := []struct {
		name, kind, body string
		check            func(Event) bool
		err              error // nil, ErrIgnored, or errParse
	}{
		{"review approved", "pull_request_review", reviewPayload("approved"), func(e Event) bool {
			return e.Kind == KindReview && e.PullRequest.Number == 7 && e.PullRequest.ReviewState == "approved" &&
				e.PullRequest.Branch == "canarybot/qwen/5f2b9c0d1e3a" && e.Installation == 42 && e.Owner == "acme" && e.Sender == "ana"
		}, nil},
		{"pull request merged", "pull_request", marshal(&github.PullRequestEvent{Action: github.String("closed"), Repo: repo(),
			PullRequest: &github.PullRequest{Number: github.Int(8), Merged: github.Bool(true), Head: &github.PullRequestBranch{Ref: github.String("canarybot/qwen/x")}}}),
			func(e Event) bool {
				return e.Kind == KindPullRequest && e.PullRequest.Merged && e.PullRequest.Number == 8
			}, nil},
		{"pull request opened is ignored", "pull_request", marshal(&github.PullRequestEvent{Action: github.String("opened"), Repo: repo()}), nil, ErrIgnored},
		{"check run rerequested", "check_run", marshal(&github.CheckRunEvent{Action: github.String("rerequested"), Repo: repo(),
			CheckRun: &github.CheckRun{ID: github.Int64(3), Name: github.String("canarybot/gates"), HeadSHA: github.String("abc"),
				CheckSuite: &github.CheckSuite{HeadBranch: github.String("canarybot/qwen/x")}}}),
			func(e Event) bool {
				return e.CheckRun.Name == "canarybot/gates" && e.CheckRun.HeadBranch == "canarybot/qwen/x"
			}, nil},
		{"PR comment", "issue_comment", marshal(&github.IssueCommentEvent{Action: github.String("created"), Repo: repo(),
			Issue:   &github.Issue{Number: github.Int(7), PullRequestLinks: &github.PullRequestLinks{URL: github.String("u")}},
			Comment: &github.IssueComment{ID: github.Int64(99), Body: github.String("/canarybot abort"), User: &github.User{Login: github.String("bob")}}}),
			func(e Event) bool {
				return e.Comment.IsPR && e.Comment.ID == 99 && e.Comment.Author == "bob" && e.Comment.Issue == 7
			}, nil},
		{"comment without author", "issue_comment", marshal(&github.IssueCommentEvent{Action: github.String("created"), Repo: repo(),
			Issue: &github.Issue{Number: github.Int(7)}, Comment: &github.IssueComment{ID: github.Int64(1)}}), nil, errParse},
		{"GHCR package published", "registry_package", registryPackage(digest, "ghcr.io/acme/qwen:v2"), func(e Event) bool {
			return e.Package.Repository == "ghcr.io/acme/qwen" && e.Package.Digest == digest && e.Package.Tag == "v2"
		}, nil},
		{"package without package_url uses namespace", "registry_package", registryPackage(digest, ""), func(e Event) bool {
			return e.Package.Repository == "ghcr.io/acme/qwen"
		}, nil},
		{"package version that is a tag, not a digest", "registry_package", registryPackage("latest", ""), nil, errParse},
		{"npm package ignored", "registry_package", strings.ReplaceAll(registryPackage(digest, ""), "CONTAINER", "npm"), nil, ErrIgnored},
		{"package updated ignored", "registry_package", strings.Replace(registryPackage(digest, ""), "published", "updated", 1), nil, ErrIgnored},
		{"unknown event", "watch", `{}`, nil, ErrIgnored},
		{"no repository", "pull_request_review", strings.Replace(reviewPayload("approved"), `"owner":{"login":"acme"}`, `"owner":{}`, 1), nil, errParse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Parse(tc.kind, []byte(tc.body))
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("Parse: %v", err)
			case tc.err == ErrIgnored && !errors.Is(err, ErrIgnored):
				t.Fatalf("Parse = %v, want ErrIgnored", err)
			case tc.err == errParse && (err == nil || errors.Is(err, ErrIgnored)):
				t.Fatalf("Parse = %+v, %v; want a parse error", ev, err)
			case tc.check != nil && !tc.check(ev):
				t.Fatalf("Parse = %+v", ev)
			}
		})
	}
}

var errParse = errors.New("parse error")

func FuzzParse(f *testing.F) {
	for _, k := range []string{"pull_request_review", "pull_request", "check_run", "issue_comment", "registry_package", "package"} {
		f.Add(k, reviewPayload("approved"))
		f.Add(k, registryPackage(digest, "ghcr.io/acme/qwen:v2"))
	}
	f.Fuzz(func(t *testing.T, kind, body string) {
		ev, err := Parse(kind, []byte(body))
		if err != nil {
			return
		}
		if ev.Kind == "" {
			t.Fatalf("Parse(%q) returned an event without a kind", kind)
		}
		if p := ev.Package; p != nil && (!isDigest(p.Digest) || strings.Count(p.Repository, "/") < 2) {
			t.Fatalf("Parse(%q) accepted package %+v", kind, p)
		}
		if c := ev.Comment; c != nil && (c.ID == 0 || c.Author == "") {
			t.Fatalf("Parse(%q) accepted comment %+v", kind, c)
		}
	})
}
