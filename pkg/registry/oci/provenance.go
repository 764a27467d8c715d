package oci

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Sigstore bundles as cosign attaches them to an artifact: an OCI
// referrer of artifact type BundleMediaType whose one layer is the bundle's
// JSON. A cosign signature is a bundle holding a DSSE-wrapped in-toto
// statement of predicate type CosignSignPredicateType about the artifact's
// manifest digest; cosign attestations (SBOMs, SLSA provenance) use the
// same artifact type with other predicates, and are not signatures.
const (
	BundleMediaType         = "application/vnd.dev.sigstore.bundle.v0.3+json"
	CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"
	// annotationPredicateType is the referrer annotation naming a bundle's
	// predicate, which cosign sets; it only lets attestations be skipped
	// unread, and is never trusted to accept a bundle.
	annotationPredicateType = "dev.sigstore.bundle.predicateType"
	// MaxBundles bounds how many bundles of one artifact are examined.
	MaxBundles = 16
	// maxBundleBytes bounds one bundle's size.
	maxBundleBytes = 1 << 20
)

// Why an artifact's provenance was refused. IsUnverified reports any of
// them.
var (
	// ErrUnsigned: no cosign signature is attached to the artifact.
	ErrUnsigned = errors.New("unsigned")
	// ErrBadSignature: a signature is attached but does not verify: made
	// with another key, over another digest, not chained to the trusted
	// root, or missing the required transparency log entry.
	ErrBadSignature = errors.New("bad signature")
	// ErrWrongSigner: a signature verifies, but its certificate names
	// another identity or issuer than the plan wants.
	ErrWrongSigner = errors.New("wrong signer")
)

// IsUnverified reports whether err says that an artifact's provenance was
// checked and refused, rather than that it could not be checked.
func IsUnverified(err error) bool {
	return errors.Is(err, ErrUnsigned) || errors.Is(err, ErrBadSignature) || errors.Is(err, ErrWrongSigner)
}

// attached is one Sigstore bundle attached to an artifact, or why it
// could not be read.
type attached struct {
	manifest v1.Hash
	raw      []byte
	err      error
}

// verifyDigest checks that the artifact at dig carries a cosign
// signature that t accepts. It returns nil, an error IsUnverified reports
// (the reason), a registry error, or a terminal error for a malformed
// digest.
func verifyDigest(ctx context.Context, o *options, dig name.Digest, t *trust) error {
	h, err := v1.NewHash(dig.DigestStr())
	if err != nil {
		return canary.Terminal(fmt.Errorf("verify %s: %w", dig, err))
	}
	sum, err := hex.DecodeString(h.Hex)
	if err != nil {
		return canary.Terminal(fmt.Errorf("verify %s: %w", dig, err))
	}
	found, skipped, err := fetchBundles(ctx, o, dig)
	if err != nil {
		return err
	}
	var worst error
	for _, a := range found {
		err := t.check(a, h.Algorithm, sum)
		var other notSignature
		switch {
		case err == nil:
			return nil
		case errors.As(err, &other):
			skipped = append(skipped, other.predicate)
		case worst == nil || errors.Is(err, ErrWrongSigner):
			worst = err
		}
	}
	if worst != nil {
		return worst
	}
	if len(skipped) > 0 {
		return fmt.Errorf("%w: no signature for %s: %d Sigstore bundle(s) attached, none a cosign signature (predicates %s)",
			ErrUnsigned, dig.DigestStr(), len(skipped), strings.Join(skipped, ", "))
	}
	if legacySignature(ctx, o, dig) {
		return fmt.Errorf("%w: no signature for %s in the Sigstore bundle format; tag %s holds a legacy cosign signature, "+
			"which canarybot does not verify: sign again with cosign v3, or cosign v2 with --new-bundle-format",
			ErrUnsigned, dig.DigestStr(), legacyTag(dig).TagStr())
	}
	return fmt.Errorf("%w: no signature for %s", ErrUnsigned, dig.DigestStr())
}

// fetchBundles returns the Sigstore bundles attached to dig (at most
// MaxBundles), and the predicate types of attestations skipped unread.
// It asks the registry's referrers API, falling back to the referrers tag
// sha256-<hex> where the registry has no such API.
func fetchBundles(ctx context.Context, o *options, dig name.Digest) ([]attached, []string, error) {
	opts := append(o.remoteOptions(ctx), remote.WithFilter("artifactType", BundleMediaType))
	idx, err := remote.Referrers(dig, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("list referrers of %s: %w", dig, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, fmt.Errorf("read referrers of %s: %w", dig, err)
	}
	var found []attached
	var skipped []string
	for _, desc := range im.Manifests {
		if p, ok := desc.Annotations[annotationPredicateType]; ok && p != CosignSignPredicateType {
			skipped = append(skipped, p)
			continue
		}
		if len(found) == MaxBundles {
			o.logger.WarnContext(ctx, "too many Sigstore bundles; the rest are not examined",
				"artifact", dig.String(), "examined", MaxBundles)
			break
		}
		raw, err := readBundle(ctx, o, dig.Context().Digest(desc.Digest.String()))
		if err != nil && !IsUnverified(err) {
			return nil, nil, err
		}
		found = append(found, attached{manifest: desc.Digest, raw: raw, err: err})
	}
	return found, skipped, nil
}

// readBundle reads the bundle layer of the referrer manifest at ref.
func readBundle(ctx context.Context, o *options, ref name.Digest) ([]byte, error) {
	img, err := remote.Image(ref, o.remoteOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("read bundle manifest %s: %w", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read bundle manifest %s: %w", ref, err)
	}
	for _, l := range m.Layers {
		if l.MediaType != BundleMediaType {
			continue
		}
		if l.Size > maxBundleBytes {
			return nil, fmt.Errorf("%w: bundle %s is %d bytes, over %d", ErrBadSignature, ref.DigestStr(), l.Size, maxBundleBytes)
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return nil, fmt.Errorf("read bundle %s: %w", ref, err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			return nil, fmt.Errorf("read bundle %s: %w", ref, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, maxBundleBytes+1))
		if err != nil {
			return nil, fmt.Errorf("read bundle %s: %w", ref, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: referrer %s has no %s layer", ErrBadSignature, ref.DigestStr(), BundleMediaType)
}

// notSignature is a verified bundle that attests something else than a
// signature.
type notSignature struct{ predicate string }

func (n notSignature) Error() string { return "not a cosign signature: predicate " + n.predicate }

// check verifies one bundle over the manifest digest sum, made with algo
// ("sha256").
func (t *trust) check(a attached, algo string, sum []byte) error {
	if a.err != nil {
		return a.err
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(a.raw); err != nil {
		return fmt.Errorf("%w: bundle in %s: %w", ErrBadSignature, a.manifest, err)
	}
	policy := verify.NewPolicy(verify.WithArtifactDigest(algo, sum), t.signer)
	res, err := t.verifier.Verify(&b, policy)
	var mismatch *verify.ErrNoMatchingCertificateIdentity
	switch {
	case errors.As(err, &mismatch):
		return fmt.Errorf("%w: signed by %s, want %s", ErrWrongSigner, signerOf(&b), t.want)
	case err != nil:
		return fmt.Errorf("%w: bundle in %s: %w", ErrBadSignature, a.manifest, err)
	case res.Statement != nil && res.Statement.GetPredicateType() != CosignSignPredicateType:
		return notSignature{predicate: res.Statement.GetPredicateType()}
	}
	return nil
}

// signerOf describes who signed b, for messages.
func signerOf(b *bundle.Bundle) string {
	vc, err := b.VerificationContent()
	if err != nil {
		return "an unknown signer"
	}
	c := vc.Certificate()
	if c == nil {
		return "a public key"
	}
	s, err := certificate.SummarizeCertificate(c)
	if err != nil {
		return "an unreadable certificate"
	}
	return s.SubjectAlternativeName + " from " + s.Issuer
}

// legacyTag is where cosign before the bundle format stored a signature.
func legacyTag(dig name.Digest) name.Tag {
	return dig.Context().Tag(strings.Replace(dig.DigestStr(), ":", "-", 1) + ".sig")
}

// legacySignature reports whether dig has a legacy cosign signature tag.
func legacySignature(ctx context.Context, o *options, dig name.Digest) bool {
	_, err := remote.Head(legacyTag(dig), o.remoteOptions(ctx)...)
	if err != nil && !isNotFound(err) {
		o.logger.DebugContext(ctx, "could not look for a legacy cosign signature", "artifact", dig.String(), "error", err)
	}
	return err == nil
}
