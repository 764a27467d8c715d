// Package redact hides the credentials that URLs carry before the URLs are
// printed, logged, wrapped into an error or written to Git: the user and
// password of the authority (https://TOKEN@host, https://user:pass@host)
// and the values of token-like query and fragment parameters (token,
// access_token, private_token, key, secret, password, sig, signature,
// X-Amz-Signature, …). It needs nothing but the standard library, so any
// package may use it.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces each hidden credential.
const Mask = "xxxxx"

var (
	// embedded matches a URL inside longer text: a scheme, "://", and
	// what follows up to a character that no URL's authority may hold
	// (white space, a double quote as in Go's %q, angle brackets, a
	// backquote, a backslash, braces, a bar, a caret).
	embedded = regexp.MustCompile("[A-Za-z][A-Za-z0-9+.-]*://[^\\s\"<>`\\\\{}|^]+")
	// scheme matches a string that starts as a URL.
	scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
)

// URL returns s with the credentials of every URL in it hidden. s may be
// one URL, or any text that embeds URLs, such as an error message from an
// HTTP or Git client quoting the URL it dialled. Text without "://"
// (a local path, a host:port) is returned as it is.
func URL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	if scheme.MatchString(s) && !strings.ContainsAny(s, " \t\n\r\v\f") {
		return one(s) // the whole string is one URL, whatever it holds
	}
	return embedded.ReplaceAllStringFunc(s, func(u string) string {
		// Punctuation that ends a sentence or closes a bracket around
		// the URL is kept out of it.
		core := strings.TrimRight(u, ".,;:!?)]'")
		return one(core) + u[len(core):]
	})
}

// Error returns err with its message passed through URL, or err itself
// when the message has nothing to hide. errors.Is and errors.As still see
// err and everything it wraps; nil stays nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := URL(msg)
	if red == msg {
		return err
	}
	return &redacted{msg: red, err: err}
}

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// one hides the credentials of a single URL. The authority ends at the
// first '/', '?' or '#' after "://", and its user information runs to the
// last '@' in it, as net/url and Git's clients read them.
func one(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return u
	}
	head, rest := u[:i+3], u[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if at := strings.LastIndex(authority, "@"); at > 0 {
		user := Mask
		if strings.Contains(authority[:at], ":") {
			user = Mask + ":" + Mask
		}
		authority = user + authority[at:]
	}
	return head + authority + params(secretPath(authority, tail))
}

// params hides the values of sensitive parameters in the query and the
// fragment of tail, the part of a URL after its authority.
func params(tail string) string {
	q := strings.IndexByte(tail, '?')
	f := strings.IndexByte(tail, '#')
	switch {
	case q < 0 && f < 0:
		return tail
	case q < 0 || (f >= 0 && f < q):
		return tail[:f+1] + pairs(tail[f+1:])
	case f < 0:
		return tail[:q+1] + pairs(tail[q+1:])
	default:
		return tail[:q+1] + pairs(tail[q+1:f]) + "#" + pairs(tail[f+1:])
	}
}

// pairs hides the value of each sensitive key=value in an
// '&'-separated list; the rest is kept byte for byte.
func pairs(s string) string {
	parts := strings.Split(s, "&")
	for i, p := range parts {
		if k, _, ok := strings.Cut(p, "="); ok && Sensitive(k) {
			parts[i] = k + "=" + Mask
		}
	}
	return strings.Join(parts, "&")
}

// secretWords mark a parameter as a credential wherever they appear in
// its name, case-insensitively.
var secretWords = []string{"token", "secret", "passw", "signature", "credential", "apikey", "api_key", "api-key"}

// secretNames are parameter names that are credentials only as a whole.
var secretNames = map[string]bool{"sig": true, "pass": true, "pwd": true, "auth": true, "authorization": true}

// Sensitive reports whether a query parameter named name (possibly
// percent-encoded) carries a credential: a name holding token, secret,
// passw(or)d, signature, credential or apikey, a name ending in key
// (key, access_key, x-api-key), or sig, pass, pwd, auth or authorization.
func Sensitive(name string) bool {
	if n, err := url.QueryUnescape(name); err == nil {
		name = n
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		return false
	}
	if secretNames[name] || strings.HasSuffix(name, "key") {
		return true
	}
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}
