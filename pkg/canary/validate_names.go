package canary

import (
	"fmt"
	"regexp"
	"strings"
)

// botDir is the repository folder canarybot owns: states, plans, locks.
const botDir = ".canarybot"

// Limits of Kubernetes and OCI names.
const (
	maxSubdomain = 253 // a DNS-1123 subdomain, e.g. a Kubernetes object name
	maxOCIPath   = 255 // the path of an OCI repository name, without the host
)

// Name patterns; like dnsLabel, compiled once and never changed.
var (
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// ociPathComponent is the OCI distribution spec's path component:
	// lowercase alphanumerics separated by '.', '_', '__' or '-'s.
	ociPathComponent = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)
)

// validSubdomain reports whether s is a DNS-1123 subdomain: at most 253
// lowercase alphanumerics, '-' and '.', starting and ending alphanumeric,
// each dot-separated label starting and ending alphanumeric.
func validSubdomain(s string) bool {
	return len(s) <= maxSubdomain && dns1123Subdomain.MatchString(s)
}

// validateArgoApp checks spec.argocd.application, the name of an Argo CD
// Application: a Kubernetes object name.
func validateArgoApp(app string, add addFunc) {
	const f = "spec.argocd.application"
	switch {
	case app == "":
		add(f, "is required")
	case !validSubdomain(app):
		add(f, "must be a Kubernetes name (a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', "+
			"starting and ending with a letter or digit, at most %d), got %q", maxSubdomain, app)
	}
}

// validateOverlay checks spec.overlay: a clean path inside the repo, out
// of the folder canarybot writes on its own.
func validateOverlay(p string, add addFunc) {
	const f = "spec.overlay"
	if err := CheckRepoPath(p); err != nil {
		add(f, "%s", err)
		return
	}
	if p == botDir || strings.HasPrefix(p, botDir+"/") {
		add(f, "must not be %s/ or inside it (canarybot's own state lives there), got %q", botDir, p)
	}
}

// ociRepoPath splits an OCI repository into its registry host (empty for
// Docker Hub's implicit one) and its path, as go-containerregistry does: the
// first segment is a host when it is localhost or holds a '.' or ':'.
func ociRepoPath(repo string) (host, p string) {
	first, rest, ok := strings.Cut(repo, "/")
	if ok && (first == "localhost" || strings.ContainsAny(first, ".:")) {
		return first, rest
	}
	return "", repo
}

// checkOCIRepoPath checks the path of a host/path OCI repository name, the
// part registries require lowercase. It returns "" when the path is fine.
func checkOCIRepoPath(repo string) string {
	_, p := ociRepoPath(repo)
	if strings.ToLower(p) != p {
		return fmt.Sprintf("must be lowercase after the host (OCI repository names are), got %q; try %q",
			repo, strings.TrimSuffix(repo, p)+strings.ToLower(p))
	}
	if len(p) > maxOCIPath {
		return fmt.Sprintf("has a path of %d characters, over the OCI limit of %d", len(p), maxOCIPath)
	}
	for c := range strings.SplitSeq(p, "/") {
		if !ociPathComponent.MatchString(c) {
			return fmt.Sprintf("has a path component %q that is not lowercase letters and digits separated by "+
				"'.', '_', '__' or '-', got %q", c, repo)
		}
	}
	return ""
}
