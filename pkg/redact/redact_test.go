package redact

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"user only", "https://SECRET@github.com/org/repo.git", "https://xxxxx@github.com/org/repo.git"},
		{"user and password", "https://x-access-token:SECRET@github.com/org/repo.git", "https://xxxxx:xxxxx@github.com/org/repo.git"},
		{"user only, no path", "http://SECRET@127.0.0.1:1", "http://xxxxx@127.0.0.1:1"},
		{"at sign in password", "https://u:SEC@RET@host/x", "https://xxxxx:xxxxx@host/x"},
		{"query token", "https://host/x.git?token=SECRET", "https://host/x.git?token=xxxxx"},
		{"query names, any case", "https://host/p?Access_Token=SECRET&X-Amz-Signature=SECRET&ref=main&PRIVATE_TOKEN=SECRET",
			"https://host/p?Access_Token=xxxxx&X-Amz-Signature=xxxxx&ref=main&PRIVATE_TOKEN=xxxxx"},
		{"more query names", "https://h/?key=SECRET&sig=SECRET&signature=SECRET&secret=SECRET&password=SECRET&x-api-key=SECRET&X-Amz-Credential=SECRET&a=1",
			"https://h/?key=xxxxx&sig=xxxxx&signature=xxxxx&secret=xxxxx&password=xxxxx&x-api-key=xxxxx&X-Amz-Credential=xxxxx&a=1"},
		{"percent-encoded name", "https://h/?%74oken=SECRET", "https://h/?%74oken=xxxxx"},
		{"fragment token", "https://h/cb#access_token=SECRET&state=s", "https://h/cb#access_token=xxxxx&state=s"},
		{"query and fragment", "https://h/?token=SECRET#sig=SECRET", "https://h/?token=xxxxx#sig=xxxxx"},
		{"everything", "https://u:SECRET@h:8443/p?token=SECRET", "https://xxxxx:xxxxx@h:8443/p?token=xxxxx"},
		{"no credentials", "https://github.com/org/repo.git?ref=main", "https://github.com/org/repo.git?ref=main"},
		{"at sign in the path is no user", "oci://ghcr.io/org/model@sha256:abc", "oci://ghcr.io/org/model@sha256:abc"},
		{"local path", "/srv/git/repo.git", "/srv/git/repo.git"},
		{"file URL", "file:///srv/git/repo.git", "file:///srv/git/repo.git"},
		{"host:port", "argocd.example:443", "argocd.example:443"},
		{"not a URL", "user SECRET@host", "user SECRET@host"},
		{"empty", "", ""},
		{"unparseable URL", "https://u:SECRET@host:notaport/x", "https://xxxxx:xxxxx@host:notaport/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := URL(tc.in); got != tc.want {
				t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// Error messages embed URLs: Go's HTTP client quotes the URL it dialled
// (hiding a password, but not a user-only token or a query token), and
// go-git appends its own paths to the remote URL.
func TestURLInText(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"go-git clone error",
			`clone https://SECRET@127.0.0.1:1/x.git branch main: Get "https://SECRET@127.0.0.1:1/x.git/info/refs?service=git-upload-pack": dial tcp 127.0.0.1:1: connect: connection refused`,
			`clone https://xxxxx@127.0.0.1:1/x.git branch main: Get "https://xxxxx@127.0.0.1:1/x.git/info/refs?service=git-upload-pack": dial tcp 127.0.0.1:1: connect: connection refused`},
		{"go-git query token",
			`Get "https://u:***@h/x.git?token=SECRET/info/refs?service=git-upload-pack": EOF`,
			`Get "https://xxxxx:xxxxx@h/x.git?token=xxxxx": EOF`},
		{"two URLs", "origin is https://a:SECRET@h/x, not https://SECRET@h/y.",
			"origin is https://xxxxx:xxxxx@h/x, not https://xxxxx@h/y."},
		{"in brackets", "<https://SECRET@h/x> and (http://h/?token=SECRET)", "<https://xxxxx@h/x> and (http://h/?token=xxxxx)"},
		{"multi-line", "first line\nsee https://SECRET@h/x\n", "first line\nsee https://xxxxx@h/x\n"},
		{"nothing to hide", "read state qwen: file does not exist", "read state qwen: file does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := URL(tc.in); got != tc.want {
				t.Errorf("URL(%q)\n = %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

// The error Go's HTTP client returns for a user-only or query token
// shows the token; Error hides it and keeps the chain.
func TestError(t *testing.T) {
	_, err := http.Get("http://SECRET@127.0.0.1:1/x?access_token=SECRET")
	if err == nil || !strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("expected net/http to show the token, got %v", err)
	}
	wrapped := Error(fmt.Errorf("fetch: %w", err))
	if strings.Contains(wrapped.Error(), "SECRET") {
		t.Errorf("Error kept the token: %v", wrapped)
	}
	if !strings.Contains(wrapped.Error(), `"http://xxxxx@127.0.0.1:1/x?access_token=xxxxx"`) {
		t.Errorf("Error = %v", wrapped)
	}
	var ue *url.Error
	if !errors.As(wrapped, &ue) {
		t.Errorf("errors.As(*url.Error) fails through the redacted error")
	}
	if err := Error(fmt.Errorf("open: %w", fs.ErrNotExist)); !errors.Is(err, fs.ErrNotExist) || err.Error() != "open: file does not exist" {
		t.Errorf("Error changed an error with nothing to hide: %v", err)
	}
	if Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}

func TestSensitive(t *testing.T) {
	for name, want := range map[string]bool{
		"token": true, "ACCESS_TOKEN": true, "private_token": true, "key": true, "secret": true,
		"client_secret": true, "password": true, "sig": true, "signature": true, "X-Amz-Signature": true,
		"X-Amz-Security-Token": true, "X-Goog-Credential": true, "apikey": true, "access_key": true,
		"ref": false, "service": false, "author": false, "state": false, "page": false, "": false,
	} {
		if got := Sensitive(name); got != want {
			t.Errorf("Sensitive(%q) = %v, want %v", name, got, want)
		}
	}
}
