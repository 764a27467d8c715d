package oci

// Test signers: real Sigstore bundles made with sigstore-go's sign package
// from keys generated per test, a private certificate authority for
// keyless signing, and an in-memory transparency log whose signed entry
// timestamps sigstore-go verifies like Rekor's.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	rekortypes "github.com/sigstore/rekor/pkg/types"
	rekordsse "github.com/sigstore/rekor/pkg/types/dsse"
	rekorutil "github.com/sigstore/rekor/pkg/util"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	ghaIssuer  = "https://token.actions.githubusercontent.com"
	releaseID  = "https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main"
	slsaType   = "https://slsa.dev/provenance/v1"
	inTotoType = "application/vnd.in-toto+json"
)

// statement is an in-toto statement about the manifest digest d
// ("sha256:…") with the given predicate type.
func statement(t *testing.T, d, predicateType string) []byte {
	t.Helper()
	algo, hexSum, ok := strings.Cut(d, ":")
	if !ok {
		t.Fatalf("digest %q", d)
	}
	b, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "model", "digest": map[string]string{algo: hexSum}}},
		"predicateType": predicateType,
		"predicate":     map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keySigner signs with one ECDSA P-256 key, as cosign sign --key does.
type keySigner struct {
	kp *sign.EphemeralKeypair
}

func newKeySigner(t *testing.T) keySigner {
	t.Helper()
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return keySigner{kp: kp}
}

func (k keySigner) publicKeyPEM(t *testing.T) string {
	t.Helper()
	p, err := k.kp.GetPublicKeyPem()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// bundle signs payload as a DSSE envelope, logging it in tlog when set.
func (k keySigner) bundle(t *testing.T, payload []byte, tlog *testLog) []byte {
	t.Helper()
	return makeBundle(t, payload, k.kp, sign.BundleOptions{}, tlog)
}

// testCA is a private Fulcio: it issues short-lived code-signing
// certificates naming an identity and an OIDC issuer.
type testCA struct {
	root, intermediate *x509.Certificate
	key                *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	inter, interKey, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{root: rootCert, intermediate: inter, key: interKey}
}

// authority is the CA as a trusted root entry.
func (c *testCA) authority() root.CertificateAuthority {
	return &root.FulcioCertificateAuthority{
		Root:                c.root,
		Intermediates:       []*x509.Certificate{c.intermediate},
		ValidityPeriodStart: time.Now().Add(-time.Hour),
		ValidityPeriodEnd:   time.Now().Add(time.Hour),
		URI:                 "https://fulcio.test",
	}
}

// identityCert implements sign.CertificateProvider: it certifies the
// keypair's public key for identity (a URI) from issuer.
type identityCert struct {
	ca               *testCA
	identity, issuer string
}

func (p identityCert) GetCertificate(_ context.Context, kp sign.Keypair, _ *sign.CertificateProviderOptions) ([]byte, error) {
	pubPEM, err := kp.GetPublicKeyPem()
	if err != nil {
		return nil, err
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(pubPEM))
	if err != nil {
		return nil, err
	}
	san, err := url.Parse(p.identity)
	if err != nil {
		return nil, err
	}
	issuerExt, err := asn1.MarshalWithParams(p.issuer, "utf8")
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(time.Now().UnixNano()),
		NotBefore:       time.Now().Add(-time.Minute),
		NotAfter:        time.Now().Add(30 * time.Minute),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		URIs:            []*url.URL{san},
		ExtraExtensions: []pkix.Extension{{Id: certificate.OIDIssuerV2, Value: issuerExt}},
	}
	return x509.CreateCertificate(rand.Reader, tmpl, p.ca.intermediate, pub, p.ca.key)
}

// keyless signs payload with a fresh key certified by c for identity.
func (c *testCA) keyless(t *testing.T, identity, issuer string, payload []byte, tlog *testLog) []byte {
	t.Helper()
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := sign.BundleOptions{CertificateProvider: identityCert{ca: c, identity: identity, issuer: issuer}}
	return makeBundle(t, payload, kp, opts, tlog)
}

func makeBundle(t *testing.T, payload []byte, kp sign.Keypair, opts sign.BundleOptions, tlog *testLog) []byte {
	t.Helper()
	if tlog != nil {
		opts.TransparencyLogs = []sign.Transparency{tlog}
	}
	b, err := sign.Bundle(&sign.DSSEData{Data: payload, PayloadType: inTotoType}, kp, opts)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	raw, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// testLog is an in-memory transparency log. It implements
// sign.Transparency: it canonicalises the bundle's DSSE entry as Rekor
// does and returns a signed entry timestamp (an inclusion promise) and an
// inclusion proof with a signed checkpoint. Each entry is logged alone, at
// index 0 of a one-leaf tree, so the proof has no hashes.
type testLog struct {
	key *ecdsa.PrivateKey
	id  []byte
}

func newTestLog(t *testing.T) *testLog {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	id := sha256.Sum256(der)
	return &testLog{key: k, id: id[:]}
}

// instance is the log as a trusted root entry.
func (l *testLog) instance() *root.TransparencyLog {
	return &root.TransparencyLog{
		BaseURL:             "https://rekor.test",
		ID:                  l.id,
		ValidityPeriodStart: time.Now().Add(-time.Hour),
		HashFunc:            crypto.SHA256,
		PublicKey:           &l.key.PublicKey,
		SignatureHashFunc:   crypto.SHA256,
	}
}

func (l *testLog) GetTransparencyLogEntry(ctx context.Context, verifierPEM []byte, b *protobundle.Bundle) error {
	env := b.GetDsseEnvelope()
	if env == nil {
		return errors.New("test log: only DSSE bundles")
	}
	envJSON, err := json.Marshal(env)
	if err != nil {
		return err
	}
	proposed, err := rekordsse.New().CreateProposedEntry(ctx, "",
		rekortypes.ArtifactProperties{ArtifactBytes: envJSON, PublicKeyBytes: [][]byte{verifierPEM}})
	if err != nil {
		return fmt.Errorf("test log: propose: %w", err)
	}
	entry, err := rekortypes.CreateVersionedEntry(proposed)
	if err != nil {
		return fmt.Errorf("test log: entry: %w", err)
	}
	body, err := rekortypes.CanonicalizeEntry(ctx, entry)
	if err != nil {
		return fmt.Errorf("test log: canonicalize: %w", err)
	}
	now := time.Now().Unix()
	// The payload of a signed entry timestamp, in RFC 8785 canonical form:
	// keys sorted, no spaces.
	payload, err := json.Marshal(struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogID          string `json:"logID"`
		LogIndex       int64  `json:"logIndex"`
	}{base64.StdEncoding.EncodeToString(body), now, hex.EncodeToString(l.id), 0})
	if err != nil {
		return err
	}
	sum := sha256.Sum256(payload)
	set, err := ecdsa.SignASN1(rand.Reader, l.key, sum[:])
	if err != nil {
		return err
	}
	proof, err := l.proof(ctx, body)
	if err != nil {
		return err
	}
	b.VerificationMaterial.TlogEntries = append(b.VerificationMaterial.TlogEntries, &protorekor.TransparencyLogEntry{
		LogId:             &protocommon.LogId{KeyId: l.id},
		KindVersion:       &protorekor.KindVersion{Kind: proposed.Kind(), Version: entry.APIVersion()},
		IntegratedTime:    now,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: set},
		InclusionProof:    proof,
		CanonicalizedBody: body,
	})
	return nil
}

// proof proves body the only leaf of a tree, whose RFC 6962 root is the
// leaf's hash, with a checkpoint the log signs.
func (l *testLog) proof(ctx context.Context, body []byte) (*protorekor.InclusionProof, error) {
	rootHash := sha256.Sum256(append([]byte{0}, body...))
	signer, err := signature.LoadECDSASignerVerifier(l.key, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	cp, err := rekorutil.CreateAndSignCheckpoint(ctx, "rekor.test", 1, 1, rootHash[:], signer)
	if err != nil {
		return nil, fmt.Errorf("test log: checkpoint: %w", err)
	}
	return &protorekor.InclusionProof{TreeSize: 1, RootHash: rootHash[:],
		Checkpoint: &protorekor.Checkpoint{Envelope: string(cp)}}, nil
}

// trustedRootJSON is a Sigstore trusted_root.json trusting cas and logs.
func trustedRootJSON(t *testing.T, cas []*testCA, logs ...*testLog) string {
	t.Helper()
	var authorities []root.CertificateAuthority
	for _, c := range cas {
		authorities = append(authorities, c.authority())
	}
	tlogs := map[string]*root.TransparencyLog{}
	for _, l := range logs {
		tlogs[hex.EncodeToString(l.id)] = l.instance()
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, authorities, nil, nil, tlogs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rawManifest is a manifest to put as is.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// attach pushes bundle as a referrer of the manifest at subject
// (repo@sha256:…), as cosign does; predicateType, when set, is annotated.
func attach(t *testing.T, subject string, bundle []byte, predicateType string) {
	t.Helper()
	ctx := context.Background()
	dig, err := name.NewDigest(subject)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(dig)
	if err != nil {
		t.Fatalf("head %s: %v", subject, err)
	}
	cfg := static.NewLayer([]byte("{}"), "application/vnd.oci.empty.v1+json")
	layer := static.NewLayer(bundle, BundleMediaType)
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  BundleMediaType,
		Config:        descriptorOf(t, cfg),
		Layers:        []v1.Descriptor{descriptorOf(t, layer)},
		Subject:       &v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest},
		Annotations:   map[string]string{"dev.sigstore.bundle.content": "dsse-envelope"},
	}
	if predicateType != "" {
		m.Annotations[annotationPredicateType] = predicateType
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []v1.Layer{cfg, layer} {
		if err := remote.WriteLayer(dig.Context(), l, remote.WithContext(ctx)); err != nil {
			t.Fatalf("upload blob: %v", err)
		}
	}
	h, _, err := v1.SHA256(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(dig.Context().Digest(h.String()), rawManifest(raw), remote.WithContext(ctx)); err != nil {
		t.Fatalf("put referrer: %v", err)
	}
}

func descriptorOf(t *testing.T, l v1.Layer) v1.Descriptor {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	sz, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := l.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: mt, Size: sz, Digest: d}
}
