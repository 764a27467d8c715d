package canary

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/canarybot/canarybot/pkg/artifact"
)

var (
	mlflowAlias        = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	mlflowVersionAlias = regexp.MustCompile(`^[vV][0-9]+$`)
)

// validateSource checks that exactly one source is set and that it can
// only ever yield pinned artifacts.
func validateSource(src SourceSpec, add addFunc) {
	n := 0
	for _, set := range []bool{src.OCI != nil, src.MLflow != nil, src.Static != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		add("spec.model.source", "exactly one source is required (oci, mlflow or static), got %d", n)
	}
	if src.OCI != nil {
		validateOCISource(*src.OCI, add)
	}
	if src.MLflow != nil {
		validateMLflowSource(*src.MLflow, add)
	}
	if src.Static != nil {
		validateStaticSource(*src.Static, add)
	}
}

func validateOCISource(o OCISource, add addFunc) {
	const f = "spec.model.source.oci."
	repo := o.Repository
	switch {
	case repo == "":
		add(f+"repository", "is required")
	case strings.Contains(repo, "://"):
		add(f+"repository", "must be host/path without a scheme, got %q", repo)
	case strings.ContainsAny(repo, "@ \t") || strings.Contains(repo[strings.LastIndex(repo, "/")+1:], ":"):
		add(f+"repository", "must name a repository, without a tag or digest, got %q", repo)
	case !strings.Contains(repo, "/"):
		add(f+"repository", "must be host/path, got %q", repo)
	}
	if o.TagRegex != "" {
		if _, err := regexp.Compile(o.TagRegex); err != nil {
			add(f+"tagRegex", "%s", err)
		}
	}
	switch o.Policy {
	case OCIPolicySemver:
	case OCIPolicyRegex:
		if o.TagRegex == "" {
			add(f+"tagRegex", "is required with policy %q", OCIPolicyRegex)
		}
	case OCIPolicyLatest:
	default:
		add(f+"policy", "must be %q, %q or %q, got %q", OCIPolicySemver, OCIPolicyRegex, OCIPolicyLatest, o.Policy)
	}
	if o.Semver != "" && o.Policy != OCIPolicySemver {
		add(f+"semver", "applies only with policy %q, got policy %q", OCIPolicySemver, o.Policy)
	}
	if o.CreatedAnnotation != "" && o.Policy != OCIPolicyLatest {
		add(f+"createdAnnotation", "applies only with policy %q, got policy %q", OCIPolicyLatest, o.Policy)
	}
}

func validateMLflowSource(m MLflowSource, add addFunc) {
	const f = "spec.model.source.mlflow."
	if err := checkTrackingURI(m.TrackingURI); err != nil {
		add(f+"trackingURI", "%s", err)
	}
	if err := artifact.CheckMLflowName(m.Model); err != nil {
		add(f+"model", "%s", err)
	}
	if a := m.Alias; a != "" {
		switch {
		case !mlflowAlias.MatchString(a):
			add(f+"alias", "must be letters, digits, '_' or '-' (at most 255), got %q", a)
		case strings.EqualFold(a, "latest") || mlflowVersionAlias.MatchString(a):
			add(f+"alias", "%q is reserved by MLflow for version lookups, not an alias", a)
		}
	}
	keys := make([]string, 0, len(m.RequireTags))
	for k := range m.RequireTags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.TrimSpace(k) == "" {
			add(f+"requireTags", "tag keys must not be empty")
		}
	}
}

// checkTrackingURI accepts http(s)://host[:port][/prefix], without
// credentials, query or fragment.
func checkTrackingURI(s string) error {
	if s == "" {
		return fmt.Errorf("is required")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("must be an http(s) URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("must be an http:// or https:// URL, got %q", s)
	case u.Host == "":
		return fmt.Errorf("must name a host, got %q", s)
	case u.User != nil:
		return fmt.Errorf("must not carry credentials; give them to canarybot through its environment")
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("must not have a query or fragment, got %q", s)
	}
	return nil
}

func validateStaticSource(st StaticSource, add addFunc) {
	const f = "spec.model.source.static."
	ref, err := artifact.Parse(st.URI)
	switch {
	case st.URI == "":
		add(f+"uri", "is required")
	case err != nil:
		add(f+"uri", "%s", err)
	case ref.Scheme == artifact.SchemeMLflow:
		add(f+"uri", "%s is an MLflow version, which a model server cannot load; use spec.model.source.mlflow, "+
			"which resolves its storage location", st.URI)
	}
	if strings.ContainsFunc(st.Version, func(r rune) bool { return r <= ' ' }) || len(st.Version) > 128 {
		add(f+"version", "must be at most 128 characters without spaces, got %q", st.Version)
	}
}
