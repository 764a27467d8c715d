package redact

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

func TestSlackWebhookURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://hooks.slack.com/services/T0001/B0002/SECRETSECRET", "https://hooks.slack.com/services/xxxxx"},
		{"https://HOOKS.slack.com:443/services/T0001/B0002/SECRET?x=1", "https://HOOKS.slack.com:443/services/xxxxx?x=1"},
		{"https://hooks.slack.com/workflows/T1/A2/3/SECRET", "https://hooks.slack.com/workflows/xxxxx"},
		{"https://hooks.slack.com/services/", "https://hooks.slack.com/services/"},
		{"https://hooks.slack.com", "https://hooks.slack.com"},
		{"https://slack.com/api/chat.postMessage", "https://slack.com/api/chat.postMessage"},
		{`Post "https://hooks.slack.com/services/T1/B2/SECRET": dial tcp: refused`, `Post "https://hooks.slack.com/services/xxxxx": dial tcp: refused`},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValues(t *testing.T) {
	got := Values("key s3cr3t-key and https://u:p@h/x and abc", "s3cr3t-key", "abc", "")
	if want := "key xxxxx and https://xxxxx:xxxxx@h/x and abc"; got != want {
		t.Errorf("Values = %q, want %q", got, want)
	}
	base := fmt.Errorf("sign with s3cr3t-key: %w", fs.ErrPermission)
	err := ErrorValues(base, "s3cr3t-key")
	if strings.Contains(err.Error(), "s3cr3t") || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("ErrorValues = %v (is ErrPermission: %v)", err, errors.Is(err, fs.ErrPermission))
	}
	if ErrorValues(nil, "x") != nil {
		t.Error("ErrorValues(nil) is not nil")
	}
	if plain := errors.New("nothing here"); ErrorValues(plain, "s3cr3t") != plain {
		t.Error("ErrorValues wrapped an error with nothing to hide")
	}
}
