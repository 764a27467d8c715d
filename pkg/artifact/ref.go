// Package artifact parses and prints model artifact references, and accepts
// only references pinned to immutable content.
//
// Accepted forms:
//
//	oci://host[:port]/path@sha256:<64 hex>        (OCI manifest digest)
//	oci://host[:port]/path:tag@sha256:<64 hex>    (tag kept, informational)
//	models:/<name>/<version number>               (MLflow model registry)
//	s3://bucket/key?versionId=<id>                (S3 object version)
//	gs://bucket/key#<generation>                  (GCS object generation)
//
// A reference that names content which can change later (an OCI tag, an
// MLflow alias or stage, an unversioned object, a Hugging Face repo) is
// rejected with an error wrapping ErrMutable, whose message says why and how
// to pin it.
//
// The package is a leaf: it imports only the standard library, so that the
// core (pkg/canary) can validate plans with it. canary.ErrMutableReference is
// ErrMutable.
package artifact

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the longest reference Parse accepts, in bytes.
const MaxLen = 4096

// Scheme is a reference's kind of registry.
type Scheme string

// Schemes Parse accepts.
const (
	SchemeOCI    Scheme = "oci"
	SchemeMLflow Scheme = "models"
	SchemeS3     Scheme = "s3"
	SchemeGCS    Scheme = "gs"
)

// Sentinel errors. ErrInvalid marks a reference that is malformed; ErrMutable
// one that is well formed but names content that can change.
var (
	ErrInvalid = errors.New("invalid artifact reference")
	ErrMutable = errors.New("artifact reference is mutable")
)

// MutableError says why a well-formed reference is not pinned. It wraps
// ErrMutable.
type MutableError struct {
	// Ref is the reference as given.
	Ref string
	// Reason explains what can change and how to pin it.
	Reason string
}

func (e *MutableError) Error() string {
	return fmt.Sprintf("artifact reference %s is mutable: %s", quote(e.Ref), e.Reason)
}

// Unwrap returns ErrMutable.
func (e *MutableError) Unwrap() error { return ErrMutable }

// Ref is a parsed reference. It is comparable with ==; Parse returns only
// pinned, canonical Refs.
type Ref struct {
	Scheme Scheme
	// Host is the OCI registry (host[:port], lower case) or the S3/GCS
	// bucket; empty for MLflow.
	Host string
	// Path is the OCI repository path below Host, the S3/GCS object key, or
	// the MLflow registered model name.
	Path string
	// Tag is the OCI tag given beside the digest. It is informational: the
	// digest alone selects the content.
	Tag string
	// Digest is the OCI manifest digest, "sha256:<hex>".
	Digest string
	// Version is the MLflow version number, the S3 versionId or the GCS
	// generation.
	Version string
}

// Pinned reports whether r names immutable content.
func (r Ref) Pinned() bool {
	switch r.Scheme {
	case SchemeOCI:
		return r.Digest != ""
	case SchemeMLflow, SchemeS3, SchemeGCS:
		return r.Version != ""
	}
	return false
}

// Repository returns an OCI reference's host/path, without tag or digest.
func (r Ref) Repository() string {
	if r.Scheme != SchemeOCI {
		return ""
	}
	return r.Host + "/" + r.Path
}

// String returns the canonical form, which Parse reads back to r. A zero
// Ref prints as "".
func (r Ref) String() string {
	switch r.Scheme {
	case SchemeOCI:
		s := "oci://" + r.Repository()
		if r.Tag != "" {
			s += ":" + r.Tag
		}
		if r.Digest != "" {
			s += "@" + r.Digest
		}
		return s
	case SchemeMLflow:
		s := "models:/" + r.Path
		if r.Version != "" {
			s += "/" + r.Version
		}
		return s
	case SchemeS3:
		s := "s3://" + r.Host + "/" + r.Path
		if r.Version != "" {
			s += "?versionId=" + r.Version
		}
		return s
	case SchemeGCS:
		s := "gs://" + r.Host + "/" + r.Path
		if r.Version != "" {
			s += "#" + r.Version
		}
		return s
	}
	return ""
}

// unpinnableReason explains why a scheme canarybot knows cannot be pinned,
// or returns "" for a scheme it does not know.
func unpinnableReason(scheme string) string {
	const ociHint = "publish the model as an OCI artifact and reference it as oci://…@sha256:<digest>"
	switch scheme {
	case "hf":
		return "a Hugging Face reference resolves a branch at download time; mirror the model to an OCI registry and reference it as oci://…@sha256:<digest>"
	case "http", "https":
		return "a URL can serve different bytes tomorrow; " + ociHint
	case "pvc":
		return "a volume's files can be rewritten in place; " + ociHint
	case "file":
		return "a file can be rewritten in place; " + ociHint
	}
	return ""
}

// Parse reads a pinned artifact reference. A mutable reference yields a
// *MutableError (errors.Is ErrMutable); a malformed one an
// error wrapping ErrInvalid.
func Parse(s string) (Ref, error) {
	if err := checkText(s); err != nil {
		return Ref{}, invalid(s, "%s", err.Error())
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !validScheme(scheme) {
		return Ref{}, missingScheme(s)
	}
	scheme = strings.ToLower(scheme)
	if scheme == "models" {
		return parseMLflow(s, rest)
	}
	body, ok := strings.CutPrefix(rest, "//")
	if !ok {
		switch Scheme(scheme) {
		case SchemeOCI, SchemeS3, SchemeGCS:
			return Ref{}, invalid(s, "want %s://…", scheme)
		}
		return Ref{}, missingScheme(s)
	}
	switch Scheme(scheme) {
	case SchemeOCI:
		return parseOCI(s, body)
	case SchemeS3:
		return parseS3(s, body)
	case SchemeGCS:
		return parseGCS(s, body)
	}
	if reason := unpinnableReason(scheme); reason != "" {
		return Ref{}, &MutableError{Ref: s, Reason: reason}
	}
	return Ref{}, invalid(s, "unknown scheme %q; want oci://, models:/, s3:// or gs://", scheme)
}

// validScheme reports whether s is an RFC 3986 scheme.
func validScheme(s string) bool {
	if s == "" || !isAlnum(rune(s[0])) || s[0] <= '9' {
		return false
	}
	for _, c := range s {
		if !isAlnum(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// missingScheme explains a reference without a scheme.
func missingScheme(s string) error {
	if strings.Contains(s, "/") && !strings.HasPrefix(s, "/") && len(s) <= 200 {
		return invalid(s, "missing scheme; an OCI reference is written oci://%s", s)
	}
	return invalid(s, "missing scheme; want oci://, models:/, s3:// or gs://")
}

// checkText rejects input that no scheme accepts.
func checkText(s string) error {
	switch {
	case s == "":
		return errors.New("empty reference")
	case len(s) > MaxLen:
		return fmt.Errorf("%d bytes long, over the limit of %d", len(s), MaxLen)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	}
	for i, c := range s {
		switch {
		case unicode.IsControl(c) || c == utf8.RuneError:
			return fmt.Errorf("control character %q at byte %d", c, i)
		case unicode.IsSpace(c):
			return fmt.Errorf("space %q at byte %d", c, i)
		case !unicode.IsPrint(c):
			return fmt.Errorf("unprintable character %q at byte %d", c, i)
		}
	}
	return nil
}

// invalid builds an error wrapping ErrInvalid that names the input.
func invalid(s, format string, args ...any) error {
	return fmt.Errorf("%w %s: %s", ErrInvalid, quote(s), fmt.Sprintf(format, args...))
}

// quote quotes s for a message, shortening it when long.
func quote(s string) string {
	const max = 120
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
