package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/canarybot/canarybot/pkg/canary"
)

// trust is a plan's spec.model.source.oci.verify made ready for
// sigstore-go: what to trust, what the verifier requires, and whose
// signature the policy accepts.
type trust struct {
	verifier *verify.Verifier
	// signer is verify.WithKey() or verify.WithCertificateIdentity(…).
	signer verify.PolicyOption
	// want names the accepted signer in messages.
	want string
}

// newTrust builds the trust v describes. The trusted root, when v names a
// file, is read now. A key or root that cannot be parsed is a terminal
// error wrapping canary.ErrInvalidPlan; a file that cannot be read is
// retryable.
func newTrust(v *canary.OCIVerify) (*trust, error) {
	const f = "spec.model.source.oci.verify."
	var material root.TrustedMaterialCollection
	rootJSON := []byte(v.TrustedRoot)
	if v.TrustedRootFile != "" {
		b, err := os.ReadFile(v.TrustedRootFile)
		if err != nil {
			return nil, fmt.Errorf("read %strustedRootFile: %w", f, err)
		}
		rootJSON = b
	}
	if len(rootJSON) > 0 {
		tr, err := root.NewTrustedRootFromJSON(rootJSON)
		if err != nil {
			return nil, canary.Terminal(fmt.Errorf("%w: %strustedRoot: %w", canary.ErrInvalidPlan, f, err))
		}
		material = append(material, tr)
	}
	t := &trust{}
	if v.Keyless() {
		id, err := verify.NewShortCertificateIdentity(v.Issuer, "", v.Identity, v.IdentityRegexp)
		if err != nil {
			return nil, canary.Terminal(fmt.Errorf("%w: %sidentity: %w", canary.ErrInvalidPlan, f, err))
		}
		t.signer = verify.WithCertificateIdentity(id)
		t.want = wantIdentity(v)
	} else {
		key, err := trustedKey(v.PublicKey)
		if err != nil {
			return nil, canary.Terminal(fmt.Errorf("%w: %spublicKey: %w", canary.ErrInvalidPlan, f, err))
		}
		material = append(material, key)
		t.signer = verify.WithKey()
		t.want = "the plan's public key"
	}
	var opts []verify.VerifierOption
	if v.TlogRequired() {
		opts = append(opts, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	} else {
		opts = append(opts, verify.WithCurrentTime())
	}
	if v.SCTRequired() {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	verifier, err := verify.NewVerifier(material, opts...)
	if err != nil {
		return nil, canary.Terminal(fmt.Errorf("%w: %s: %w", canary.ErrInvalidPlan, f[:len(f)-1], err))
	}
	t.verifier = verifier
	return t, nil
}

// trustedKey is a PEM public key as trusted material that answers for
// any key hint: cosign bundles name their key by a hint of the signer's
// choosing, which proves nothing.
func trustedKey(pemKey string) (root.TrustedMaterial, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(pemKey))
	if err != nil {
		return nil, err
	}
	sv, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return nil, err
	}
	key := root.NewExpiringKey(sv, time.Time{}, time.Time{})
	return root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return key, nil
	}), nil
}

// wantIdentity describes the keyless signer v accepts.
func wantIdentity(v *canary.OCIVerify) string {
	if v.IdentityRegexp != "" {
		return fmt.Sprintf("an identity matching %q from %s", v.IdentityRegexp, v.Issuer)
	}
	return v.Identity + " from " + v.Issuer
}

// fingerprint identifies v's settings, so that a digest verified once is
// not verified again under the same ones. A trusted root file is named,
// not read. Every field of canary.OCIVerify must be listed here.
func fingerprint(v *canary.OCIVerify) string {
	h := sha256.New()
	for _, s := range []string{v.PublicKey, v.Identity, v.IdentityRegexp, v.Issuer, v.TrustedRoot,
		v.TrustedRootFile, strconv.FormatBool(v.TlogRequired()), strconv.FormatBool(v.SCTRequired())} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
