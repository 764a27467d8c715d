package gitops

import (
	"context"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://s3cret@github.com/o/r.git":                   "https://xxxxx@github.com/o/r.git",
		"https://x-access-token:s3cret@github.com/o/r.git":    "https://xxxxx:xxxxx@github.com/o/r.git",
		"https://gitlab.example/o/r.git?private_token=s3cret": "https://gitlab.example/o/r.git?private_token=xxxxx",
		"https://github.com/o/r.git":                          "https://github.com/o/r.git",
		"/srv/git/r.git":                                      "/srv/git/r.git",
		`clone https://s3cret@h/r.git: Get "https://s3cret@h/r.git/info/refs?service=git-upload-pack": EOF`: `clone https://xxxxx@h/r.git: Get "https://xxxxx@h/r.git/info/refs?service=git-upload-pack": EOF`,
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// A remote URL carrying a credential reaches the error of a failed clone
// twice: in canarybot's words and in go-git's (Go's HTTP client hides a
// password but neither a user-only token nor a query token). Neither may
// show it.
func TestOpenErrorsHideCredentials(t *testing.T) {
	ctx := context.Background()
	for name, url := range map[string]string{
		"user only":     "http://SECRET@127.0.0.1:1/x.git",
		"user:password": "http://x-access-token:SECRET@127.0.0.1:1/x.git",
		"query token":   "http://127.0.0.1:1/x.git?access_token=SECRET",
		"bad port":      "http://u:SECRET@127.0.0.1:port/x.git",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := OpenReadOnly(ctx, Options{URL: url})
			if err == nil || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("OpenReadOnly err = %v; want an error without the credential", err)
			}
			_, err = Open(ctx, Options{URL: url, Dir: t.TempDir()})
			if err == nil || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("Open err = %v; want an error without the credential", err)
			}
		})
	}
}
