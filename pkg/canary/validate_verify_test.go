package canary

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// publicKeyPEM returns a fresh ECDSA P-256 public key as cosign.pub has it.
func publicKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// withVerify is goodPlan with an OCI source verified by the YAML flow
// mapping fields.
func withVerify(fields string) string {
	return withSource("oci: {repository: r.io/a/b, verify: {" + fields + "}}")
}

func TestValidateOCIVerify(t *testing.T) {
	key := "publicKey: " + strconv.Quote(publicKeyPEM(t))
	root := "trustedRoot: " + strconv.Quote(`{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)
	const (
		gha    = "issuer: https://token.actions.githubusercontent.com"
		ident  = "identity: https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main"
		anyRef = `identityRegexp: '^https://github\.com/acme/models/\.github/workflows/release\.yml@refs/tags/v'`
		file   = "trustedRootFile: /etc/canarybot/trusted_root.json"
		f      = "spec.model.source.oci.verify."
	)
	certPEM := strconv.Quote("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	cases := []struct {
		name   string
		fields string
		want   []string // empty: valid
	}{
		{name: "key without tlog", fields: key + ", requireTlog: false"},
		{name: "key with tlog and root", fields: key + ", " + root},
		{name: "keyless identity, root file", fields: gha + ", " + ident + ", " + file},
		{name: "keyless regexp, private CA", fields: gha + ", " + anyRef + ", " + root + ", requireTlog: false, requireSCT: false"},

		{name: "nothing to trust", fields: "",
			want: []string{"spec.model.source.oci.verify: set publicKey, or issuer with identity or identityRegexp"}},
		{name: "key and identity", fields: key + ", " + gha + ", " + ident + ", " + root,
			want: []string{"spec.model.source.oci.verify: set publicKey, or issuer with identity or identityRegexp, not both"}},
		{name: "key not PEM", fields: "publicKey: hello, requireTlog: false",
			want: []string{f + "publicKey: is not PEM"}},
		{name: "key is a certificate", fields: "publicKey: " + certPEM + ", requireTlog: false",
			want: []string{f + `publicKey: is a PEM "CERTIFICATE" block, want PUBLIC KEY`}},
		{name: "key needs tlog keys", fields: key,
			want: []string{f + "trustedRoot: requireTlog needs the transparency log's keys"}},
		{name: "SCT with a key", fields: key + ", requireTlog: false, requireSCT: true",
			want: []string{f + "requireSCT: applies only to keyless verification"}},
		{name: "keyless without issuer", fields: ident + ", " + file,
			want: []string{f + "issuer: is required for keyless verification"}},
		{name: "keyless without identity", fields: gha + ", " + file,
			want: []string{f + "identity: identity or identityRegexp is required"}},
		{name: "identity and regexp", fields: gha + ", " + ident + ", " + anyRef + ", " + file,
			want: []string{f + "identityRegexp: set identity or identityRegexp, not both"}},
		{name: "bad regexp", fields: gha + ", identityRegexp: '((', " + file,
			want: []string{f + "identityRegexp: error parsing regexp"}},
		{name: "keyless without root", fields: gha + ", " + ident,
			want: []string{f + "trustedRoot: keyless verification needs the CAs to trust"}},
		{name: "two roots", fields: gha + ", " + ident + ", " + root + ", " + file,
			want: []string{f + "trustedRootFile: set trustedRoot or trustedRootFile, not both"}},
		{name: "root not JSON", fields: gha + ", " + ident + ", trustedRoot: 'roots: [a]'",
			want: []string{f + "trustedRoot: must be a Sigstore trusted_root.json"}},
		{name: "root of another type", fields: gha + ", " + ident + `, trustedRoot: '{"mediaType": "application/json"}'`,
			want: []string{f + `trustedRoot: has mediaType "application/json"`}},
		{name: "every problem at once", fields: "publicKey: x, requireSCT: false, trustedRootFile: \"a\\0b\"",
			want: []string{f + "publicKey: is not PEM", f + "requireSCT: applies only", f + "trustedRootFile: must be a file path"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePlan([]byte(withVerify(tc.fields)))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("valid verify block rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPlan) {
				t.Fatalf("err = %v, want ErrInvalidPlan", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestOCIVerifyDecodesStrictly(t *testing.T) {
	_, err := ParsePlan([]byte(withVerify("publicKey: x, requireTLog: false")))
	if err == nil || !strings.Contains(err.Error(), "spec.model.source.oci.verify.requireTLog: unknown field") {
		t.Fatalf("err = %v, want the misspelt field named with its path", err)
	}
}

func TestOCIVerifyDefaults(t *testing.T) {
	no, yes := false, true
	cases := []struct {
		name          string
		v             OCIVerify
		keyless, tlog bool
		sct           bool
	}{
		{name: "key, defaults", v: OCIVerify{PublicKey: "k"}, tlog: true},
		{name: "key, no tlog", v: OCIVerify{PublicKey: "k", RequireTlog: &no}},
		{name: "keyless, defaults", v: OCIVerify{Issuer: "i", Identity: "x"}, keyless: true, tlog: true, sct: true},
		{name: "keyless, private CA", v: OCIVerify{Issuer: "i", Identity: "x", RequireTlog: &no, RequireSCT: &no}, keyless: true},
		{name: "keyless, explicit", v: OCIVerify{Issuer: "i", Identity: "x", RequireTlog: &yes, RequireSCT: &yes},
			keyless: true, tlog: true, sct: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.v.Keyless(); got != tc.keyless {
				t.Errorf("Keyless = %v, want %v", got, tc.keyless)
			}
			if got := tc.v.TlogRequired(); got != tc.tlog {
				t.Errorf("TlogRequired = %v, want %v", got, tc.tlog)
			}
			if got := tc.v.SCTRequired(); got != tc.sct {
				t.Errorf("SCTRequired = %v, want %v", got, tc.sct)
			}
		})
	}
}

func TestSignedExampleIsValid(t *testing.T) {
	b, err := os.ReadFile("../../examples/fraud-detector-signed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePlan(b)
	if err != nil {
		t.Fatalf("examples/fraud-detector-signed.yaml: %v", err)
	}
	v := p.Spec.Model.Source.OCI.Verify
	if v == nil || !v.Keyless() || !v.TlogRequired() || !v.SCTRequired() || v.TrustedRootFile == "" {
		t.Errorf("verify = %+v, want keyless with tlog, SCT and a trusted root file", v)
	}
}
