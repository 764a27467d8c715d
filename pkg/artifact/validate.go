package artifact

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// checkHost validates an OCI registry host[:port] and returns it in lower
// case.
func checkHost(h string) (string, error) {
	for _, c := range h {
		if c > 0x7f {
			return "", fmt.Errorf("registry host %q has non-ASCII character %q", h, c)
		}
	}
	h = strings.ToLower(h)
	name, port := h, ""
	if strings.HasPrefix(h, "[") {
		if err := checkIPv6Host(h); err != nil {
			return "", fmt.Errorf("registry host %q: %w", h, err)
		}
		return h, nil
	}
	if i := strings.IndexByte(h, ':'); i >= 0 {
		name, port = h[:i], h[i+1:]
		if err := checkPort(port); err != nil {
			return "", fmt.Errorf("registry host %q: %w", h, err)
		}
	}
	if err := checkHostname(name); err != nil {
		return "", fmt.Errorf("registry host %q: %w", h, err)
	}
	return h, nil
}

// checkIPv6Host validates "[addr]" or "[addr]:port".
func checkIPv6Host(h string) error {
	end := strings.IndexByte(h, ']')
	if end < 0 {
		return errors.New("unclosed '['")
	}
	addr, err := netip.ParseAddr(h[1:end])
	if err != nil || !addr.Is6() || addr.Zone() != "" {
		return errors.New("bad IPv6 address")
	}
	if rest := h[end+1:]; rest != "" {
		p, ok := strings.CutPrefix(rest, ":")
		if !ok {
			return errors.New("junk after ']'")
		}
		return checkPort(p)
	}
	return nil
}

// checkHostname validates DNS labels separated by dots.
func checkHostname(name string) error {
	if name == "" || len(name) > 253 {
		return errors.New("hostname must be 1 to 253 characters")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("each hostname label must be 1 to 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("hostname label %q starts or ends with '-'", label)
		}
		for _, c := range label {
			if !isAlnum(c) && c != '-' {
				return fmt.Errorf("hostname has invalid character %q", c)
			}
		}
	}
	return nil
}

// checkPort validates a TCP port number without leading zeros.
func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
		return fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return nil
}

// checkRepoPath validates an OCI repository path: slash-separated
// components of [a-z0-9]+ joined by '.', '_', '__' or runs of '-'.
func checkRepoPath(path string) error {
	if len(path) > 255 {
		return fmt.Errorf("repository path is %d bytes long, over 255", len(path))
	}
	for _, comp := range strings.Split(path, "/") {
		if !validPathComponent(comp) {
			return fmt.Errorf("repository path component %q is invalid: want lower-case letters and digits, "+
				"joined by '.', '_', '__' or '-'", comp)
		}
	}
	return nil
}

// validPathComponent implements [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
func validPathComponent(c string) bool {
	if c == "" || !isLowerAlnum(rune(c[0])) || !isLowerAlnum(rune(c[len(c)-1])) {
		return false
	}
	for i := 0; i < len(c); {
		if isLowerAlnum(rune(c[i])) {
			i++
			continue
		}
		j := i
		for j < len(c) && !isLowerAlnum(rune(c[j])) {
			j++
		}
		switch sep := c[i:j]; {
		case sep == "." || sep == "_" || sep == "__":
		case strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

// checkTag validates an OCI tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
func checkTag(t string) error {
	if t == "" {
		return errors.New("empty tag after ':'")
	}
	if len(t) > 128 {
		return fmt.Errorf("tag is %d characters long, over 128", len(t))
	}
	for i, c := range t {
		if !isAlnum(c) && c != '_' && (i == 0 || (c != '.' && c != '-')) {
			return fmt.Errorf("tag %q has invalid character %q", t, c)
		}
	}
	return nil
}

// checkDigest validates "sha256:<64 lower-case hex>" or sha512 with 128.
func checkDigest(d string) error {
	if d == "" {
		return errors.New("empty digest after '@'; want sha256:<64 hex>")
	}
	algo, hex, ok := strings.Cut(d, ":")
	if !ok {
		return fmt.Errorf("digest %q has no algorithm; want sha256:<64 hex>", d)
	}
	var want int
	switch algo {
	case "sha256":
		want = 64
	case "sha512":
		want = 128
	default:
		return fmt.Errorf("digest algorithm %q is not supported; want sha256", algo)
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%s digest has %q, not lower-case hex", algo, c)
		}
	}
	if len(hex) != want {
		return fmt.Errorf("%s digest has %d hex characters, want %d", algo, len(hex), want)
	}
	return nil
}

// checkMLflowName validates a registered model name.
func checkMLflowName(n string) error {
	if n == "" {
		return errors.New("empty model name; want models:/<name>/<version>")
	}
	if len(n) > 256 {
		return fmt.Errorf("model name is %d characters long, over 256", len(n))
	}
	for i, c := range n {
		if !isAlnum(c) && (i == 0 || !strings.ContainsRune("._-", c)) {
			return fmt.Errorf("model name %q has invalid character %q", n, c)
		}
	}
	return nil
}

// checkDecimal validates a positive decimal int64 without leading zeros.
func checkDecimal(what, v string) error {
	if v == "" {
		return fmt.Errorf("empty %s", what)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != v {
		return fmt.Errorf("%s %q is not a positive decimal number", what, v)
	}
	return nil
}

// checkBucket validates an S3 or GCS bucket name.
func checkBucket(b string, max int) error {
	if len(b) < 3 || len(b) > max {
		return fmt.Errorf("bucket %q must be 3 to %d characters", b, max)
	}
	for _, c := range b {
		if !isLowerAlnum(c) && c != '.' && c != '-' && c != '_' {
			return fmt.Errorf("bucket %q has invalid character %q", b, c)
		}
	}
	if !isLowerAlnum(rune(b[0])) || !isLowerAlnum(rune(b[len(b)-1])) {
		return fmt.Errorf("bucket %q must start and end with a letter or digit", b)
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("bucket %q has \"..\"", b)
	}
	return nil
}

// checkKey validates an object key. The global text checks already ruled
// out spaces and control characters.
func checkKey(k string) error {
	switch {
	case k == "":
		return errors.New("empty object key")
	case len(k) > 1024:
		return fmt.Errorf("object key is %d bytes long, over 1024", len(k))
	}
	return nil
}

func isLowerAlnum(c rune) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isAlnum(c rune) bool { return isLowerAlnum(c) || c >= 'A' && c <= 'Z' }

// CheckMLflowName validates a registered model name as models:/ references
// accept it: letters and digits, then also '.', '_' and '-', at most 256.
func CheckMLflowName(n string) error { return checkMLflowName(n) }
