package canary

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
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
	for _, set := range []bool{src.OCI != nil, src.MLflow != nil, src.Static != nil, src.FromPlan != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		add("spec.model.source", "exactly one source is required (oci, mlflow, static or fromPlan), got %d", n)
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
	if src.FromPlan != nil {
		validateFromPlan(*src.FromPlan, add)
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
	default:
		if msg := checkOCIRepoPath(repo); msg != "" {
			add(f+"repository", "%s", msg)
		}
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
	if o.Verify != nil {
		validateOCIVerify(*o.Verify, add)
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

// trustedRootMediaType is the media type of a Sigstore trusted_root.json,
// without its version parameter.
const trustedRootMediaType = "application/vnd.dev.sigstore.trustedroot+json"

// validateOCIVerify checks that v names exactly one way to trust a
// signature (a public key, or an issuer with an identity) and the trust
// material that way needs.
func validateOCIVerify(v OCIVerify, add addFunc) {
	const f = "spec.model.source.oci.verify."
	keyless := v.Issuer != "" || v.Identity != "" || v.IdentityRegexp != ""
	switch {
	case v.PublicKey != "" && keyless:
		add("spec.model.source.oci.verify", "set publicKey, or issuer with identity or identityRegexp, not both")
	case v.PublicKey != "":
		if err := checkPublicKeyPEM(v.PublicKey); err != nil {
			add(f+"publicKey", "%s", err)
		}
		if v.RequireSCT != nil {
			add(f+"requireSCT", "applies only to keyless verification (issuer and identity)")
		}
	case !keyless:
		add("spec.model.source.oci.verify", "set publicKey, or issuer with identity or identityRegexp")
	default:
		validateKeyless(v, add)
	}
	if v.TrustedRoot != "" && v.TrustedRootFile != "" {
		add(f+"trustedRootFile", "set trustedRoot or trustedRootFile, not both")
	}
	hasRoot := v.TrustedRoot != "" || v.TrustedRootFile != ""
	switch {
	case keyless && !hasRoot:
		add(f+"trustedRoot", "keyless verification needs the CAs to trust: set trustedRoot or trustedRootFile")
	case v.PublicKey != "" && v.TlogRequired() && !hasRoot:
		add(f+"trustedRoot", "requireTlog needs the transparency log's keys: set trustedRoot or trustedRootFile, "+
			"or requireTlog: false to check the key alone")
	}
	if v.TrustedRoot != "" {
		if err := checkTrustedRoot(v.TrustedRoot); err != nil {
			add(f+"trustedRoot", "%s", err)
		}
	}
	if strings.ContainsRune(v.TrustedRootFile, 0) {
		add(f+"trustedRootFile", "must be a file path, got %q", v.TrustedRootFile)
	}
}

// validateKeyless checks the issuer and identity of keyless verification.
func validateKeyless(v OCIVerify, add addFunc) {
	const f = "spec.model.source.oci.verify."
	if v.Issuer == "" {
		add(f+"issuer", "is required for keyless verification, e.g. https://token.actions.githubusercontent.com")
	}
	switch {
	case v.Identity != "" && v.IdentityRegexp != "":
		add(f+"identityRegexp", "set identity or identityRegexp, not both")
	case v.Identity == "" && v.IdentityRegexp == "":
		add(f+"identity", "identity or identityRegexp is required for keyless verification")
	case v.IdentityRegexp != "":
		if _, err := regexp.Compile(v.IdentityRegexp); err != nil {
			add(f+"identityRegexp", "%s", err)
		}
	}
}

// checkPublicKeyPEM accepts one PEM "PUBLIC KEY" block holding an ECDSA,
// RSA or Ed25519 key, as cosign generate-key-pair writes it.
func checkPublicKeyPEM(s string) error {
	block, rest := pem.Decode([]byte(s))
	switch {
	case block == nil:
		return errors.New("is not PEM: want a -----BEGIN PUBLIC KEY----- block")
	case block.Type != "PUBLIC KEY":
		return fmt.Errorf("is a PEM %q block, want PUBLIC KEY", block.Type)
	case len(bytes.TrimSpace(rest)) > 0:
		return errors.New("has data after the PEM block; give exactly one key")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("cannot be parsed: %w", err)
	}
	switch k.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("is a %T; want an ECDSA, RSA or Ed25519 key", k)
}

// checkTrustedRoot accepts a JSON object whose mediaType is a Sigstore
// trusted root's. The verifier parses the rest.
func checkTrustedRoot(s string) error {
	var head struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal([]byte(s), &head); err != nil {
		return fmt.Errorf("must be a Sigstore trusted_root.json: %w", err)
	}
	if !strings.HasPrefix(head.MediaType, trustedRootMediaType) {
		return fmt.Errorf("has mediaType %q, want %s;version=0.1 (a Sigstore trusted_root.json)",
			head.MediaType, trustedRootMediaType)
	}
	return nil
}
