package gitops

import "github.com/canarybot/canarybot/pkg/redact"

// RedactURL returns s, a remote URL or any text that embeds one (an error
// from go-git quoting the URL it dialled), with every URL's user,
// password and token-like query parameters hidden. Use it wherever a
// remote URL is printed or logged; see pkg/redact.
func RedactURL(s string) string { return redact.URL(s) }

// redactErr hides the credentials in err's message, keeping its chain.
func redactErr(err error) error { return redact.Error(err) }
