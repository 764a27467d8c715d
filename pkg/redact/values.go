package redact

import "strings"

// secretPathHosts are hosts whose URLs carry their credential in the path:
// a Slack incoming webhook (https://hooks.slack.com/services/T…/B…/X…) is
// its own secret. Everything after the path's first segment is hidden.
var secretPathHosts = map[string]bool{
	"hooks.slack.com":     true,
	"hooks.slack-gov.com": true,
}

// secretPath hides the path of a URL whose host keeps its credential
// there; tail is the URL after its authority.
func secretPath(authority, tail string) string {
	host := authority[strings.LastIndex(authority, "@")+1:]
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	if !secretPathHosts[strings.ToLower(host)] || !strings.HasPrefix(tail, "/") {
		return tail
	}
	end := strings.IndexAny(tail, "?#")
	if end < 0 {
		end = len(tail)
	}
	path, rest := tail[:end], tail[end:]
	if i := strings.IndexByte(path[1:], '/'); i >= 0 && i+2 < len(path) {
		path = path[:i+2] + Mask
	}
	return path + rest
}

// minSecretLen is the shortest value Values hides: shorter ones would
// mask ordinary words.
const minSecretLen = 4

// Values returns s with every occurrence of each secret (a webhook URL,
// a signing key read from a file) replaced by Mask, then passed through
// URL. Secrets shorter than four bytes are not searched for.
func Values(s string, secrets ...string) string {
	for _, v := range secrets {
		if len(v) >= minSecretLen {
			s = strings.ReplaceAll(s, v, Mask)
		}
	}
	return URL(s)
}

// ErrorValues is Error with Values: err's message with the secrets and
// URL credentials hidden, its chain kept for errors.Is and errors.As.
func ErrorValues(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := Values(msg, secrets...)
	if red == msg {
		return err
	}
	return &redacted{msg: red, err: err}
}
