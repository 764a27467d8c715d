package oci

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/canarybot/canarybot/pkg/canary"
)

// signing is what one provenance case works with: a registry holding
// model v1.0.0 (digest) and v0.9.0 (other), and signers.
type signing struct {
	repo, digest, other string
	key, otherKey       keySigner
	ca, otherCA         *testCA
	log, otherLog       *testLog
}

// subject is the artifact v1.0.0 as a digest reference.
func (s *signing) subject() string { return s.repo + "@" + s.digest }

// cosign is a cosign signature statement about v1.0.0.
func (s *signing) cosign(t *testing.T) []byte { return statement(t, s.digest, CosignSignPredicateType) }

func newSigning(t *testing.T, shared *signing) *signing {
	t.Helper()
	s := *shared
	s.repo = newRegistry(t) + "/models/demo"
	s.other = push(t, s.repo, "v0.9.0", model("v0.9.0"))
	s.digest = push(t, s.repo, "v1.0.0", model("v1.0.0"))
	return &s
}

func withVerify(repo string, v canary.OCIVerify) *canary.CanaryPlan {
	p := plan(repo, "")
	p.Spec.Model.Source.OCI.Verify = &v
	return p
}

// provenanceCase attaches signatures to v1.0.0 and says whether a plan
// verifying with verify proposes it.
type provenanceCase struct {
	name   string
	verify func(*signing) canary.OCIVerify
	attach func(*testing.T, *signing)
	want   error // nil: proposed
	says   string
}

func newShared(t *testing.T) *signing {
	t.Helper()
	return &signing{key: newKeySigner(t), otherKey: newKeySigner(t), ca: newTestCA(t), otherCA: newTestCA(t),
		log: newTestLog(t), otherLog: newTestLog(t)}
}

func runProvenance(t *testing.T, shared *signing, cases []provenanceCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSigning(t, shared)
			tc.attach(t, s)
			w := NewWatcher()
			p := withVerify(s.repo, tc.verify(s))
			a := latest(t, w, p)
			refusal := w.Refusal(p.Metadata.Name)
			if tc.want == nil {
				if a == nil || a.URI != "oci://"+s.subject() || a.Version != "v1.0.0" || refusal != nil {
					t.Fatalf("Latest = %+v, refusal %v; want v1.0.0 proposed", a, refusal)
				}
				return
			}
			if a != nil {
				t.Fatalf("Latest = %+v; want nothing proposed (%v)", a, tc.want)
			}
			if !errors.Is(refusal, tc.want) || !IsUnverified(refusal) {
				t.Fatalf("refusal = %v, want %v", refusal, tc.want)
			}
			if !strings.Contains(refusal.Error(), "tag v1.0.0 ("+s.digest+")") || !strings.Contains(refusal.Error(), tc.says) {
				t.Errorf("refusal %q does not name the tag and digest and say %q", refusal, tc.says)
			}
		})
	}
}

func TestProvenanceWithKey(t *testing.T) {
	no := false
	keyOnly := func(s *signing) canary.OCIVerify {
		return canary.OCIVerify{PublicKey: s.key.publicKeyPEM(t), RequireTlog: &no}
	}
	runProvenance(t, newShared(t), []provenanceCase{
		{name: "good signature", verify: keyOnly, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.key.bundle(t, s.cosign(t), nil), CosignSignPredicateType)
		}},
		{name: "unsigned", verify: keyOnly, attach: func(*testing.T, *signing) {},
			want: ErrUnsigned, says: "unsigned: no signature for sha256:"},
		{name: "signed by another key", verify: keyOnly, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.otherKey.bundle(t, s.cosign(t), nil), CosignSignPredicateType)
		}, want: ErrBadSignature, says: "bad signature: bundle in sha256:"},
		{name: "signature of another digest", verify: keyOnly, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.key.bundle(t, statement(t, s.other, CosignSignPredicateType), nil), CosignSignPredicateType)
		}, want: ErrBadSignature, says: "does not match any digest in statement"},
		{name: "an attestation, annotated", verify: keyOnly, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.key.bundle(t, statement(t, s.digest, slsaType), nil), slsaType)
		}, want: ErrUnsigned, says: "none a cosign signature (predicates " + slsaType + ")"},
		{name: "an attestation, not annotated", verify: keyOnly, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.key.bundle(t, statement(t, s.digest, slsaType), nil), "")
		}, want: ErrUnsigned, says: "none a cosign signature (predicates " + slsaType + ")"},
		{name: "corrupt bundle", verify: keyOnly, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), []byte(`{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}`), "")
		}, want: ErrBadSignature, says: "bad signature: bundle in sha256:"},
		{name: "legacy signature tag", verify: keyOnly, attach: func(t *testing.T, s *signing) {
			push(t, s.repo, strings.Replace(s.digest, ":", "-", 1)+".sig", model("sig"))
		}, want: ErrUnsigned, says: "holds a legacy cosign signature"},
		{name: "a bad and a good signature", verify: keyOnly, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.otherKey.bundle(t, s.cosign(t), nil), CosignSignPredicateType)
			attach(t, s.subject(), s.key.bundle(t, s.cosign(t), nil), CosignSignPredicateType)
		}},
		{name: "keyless signature", verify: keyOnly, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.ca.keyless(t, releaseID, ghaIssuer, s.cosign(t), nil), CosignSignPredicateType)
		}, want: ErrBadSignature, says: "expected key signature, not certificate"},
	})
}

func TestProvenanceWithKeyAndLog(t *testing.T) {
	keyLogged := func(s *signing) canary.OCIVerify {
		return canary.OCIVerify{PublicKey: s.key.publicKeyPEM(t), TrustedRoot: trustedRootJSON(t, nil, s.log)}
	}
	runProvenance(t, newShared(t), []provenanceCase{
		{name: "logged", verify: keyLogged, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.key.bundle(t, s.cosign(t), s.log), CosignSignPredicateType)
		}},
		{name: "not logged", verify: keyLogged, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.key.bundle(t, s.cosign(t), nil), CosignSignPredicateType)
		}, want: ErrBadSignature, says: "not enough verified log entries"},
		{name: "logged in an untrusted log", verify: keyLogged, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.key.bundle(t, s.cosign(t), s.otherLog), CosignSignPredicateType)
		}, want: ErrBadSignature, says: "not enough verified log entries"},
	})
}

func TestProvenanceKeyless(t *testing.T) {
	no := false
	keyless := func(s *signing) canary.OCIVerify {
		return canary.OCIVerify{Issuer: ghaIssuer, Identity: releaseID, RequireSCT: &no,
			TrustedRoot: trustedRootJSON(t, []*testCA{s.ca}, s.log)}
	}
	with := func(change func(*canary.OCIVerify)) func(*signing) canary.OCIVerify {
		return func(s *signing) canary.OCIVerify {
			v := keyless(s)
			change(&v)
			return v
		}
	}
	signedBy := func(identity, issuer string) func(*testing.T, *signing) {
		return func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.ca.keyless(t, identity, issuer, s.cosign(t), s.log), CosignSignPredicateType)
		}
	}
	mallory := "https://github.com/mallory/models/.github/workflows/release.yml@refs/heads/main"
	onTag := "https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1.0.0"
	runProvenance(t, newShared(t), []provenanceCase{
		{name: "good signature", verify: keyless, attach: signedBy(releaseID, ghaIssuer)},
		{name: "another identity", verify: keyless, attach: signedBy(mallory, ghaIssuer), want: ErrWrongSigner,
			says: "wrong signer: signed by " + mallory + " from " + ghaIssuer + ", want " + releaseID + " from " + ghaIssuer},
		{name: "another issuer", verify: keyless, attach: signedBy(releaseID, "https://gitlab.com"), want: ErrWrongSigner,
			says: "signed by " + releaseID + " from https://gitlab.com, want"},
		{name: "identity regexp", verify: with(func(v *canary.OCIVerify) {
			v.Identity, v.IdentityRegexp = "", `^https://github\.com/acme/models/\.github/workflows/release\.yml@refs/(heads|tags)/`
		}), attach: signedBy(onTag, ghaIssuer)},
		{name: "identity regexp mismatch", verify: with(func(v *canary.OCIVerify) {
			v.Identity, v.IdentityRegexp = "", `^https://github\.com/acme/models/.*@refs/tags/`
		}), attach: signedBy(releaseID, ghaIssuer), want: ErrWrongSigner, says: "want an identity matching"},
		{name: "untrusted CA", verify: keyless, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.otherCA.keyless(t, releaseID, ghaIssuer, s.cosign(t), s.log), CosignSignPredicateType)
		}, want: ErrBadSignature, says: "failed to verify leaf certificate"},
		{name: "not logged", verify: keyless, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.ca.keyless(t, releaseID, ghaIssuer, s.cosign(t), nil), CosignSignPredicateType)
		}, want: ErrBadSignature, says: "not enough verified log entries"},
		{name: "SCT required", verify: with(func(v *canary.OCIVerify) { v.RequireSCT = nil }),
			attach: signedBy(releaseID, ghaIssuer), want: ErrBadSignature, says: "signed certificate timestamp"},
		{name: "private CA without a log", verify: with(func(v *canary.OCIVerify) { v.RequireTlog = &no }),
			attach: func(t *testing.T, s *signing) {
				attach(t, s.subject(), s.ca.keyless(t, releaseID, ghaIssuer, s.cosign(t), nil), CosignSignPredicateType)
			}},
		{name: "key signature", verify: keyless, attach: func(t *testing.T, s *signing) {
			attach(t, s.subject(), s.key.bundle(t, s.cosign(t), s.log), CosignSignPredicateType)
		}, want: ErrBadSignature},
	})
}

func TestRefusalIsLoggedOnceAndLifted(t *testing.T) {
	no := false
	s := newSigning(t, &signing{key: newKeySigner(t)})
	var logs bytes.Buffer
	w := NewWatcher(WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	p := withVerify(s.repo, canary.OCIVerify{PublicKey: s.key.publicKeyPEM(t), RequireTlog: &no})
	for range 3 {
		if a := latest(t, w, p); a != nil {
			t.Fatalf("unsigned artifact proposed: %+v", a)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings for one refused digest, want 1:\n%s", n, logs.String())
	}
	attach(t, s.subject(), s.key.bundle(t, s.cosign(t), nil), CosignSignPredicateType)
	a := latest(t, w, p)
	if a == nil || w.Refusal(p.Metadata.Name) != nil {
		t.Fatalf("after signing: Latest = %+v, refusal %v; want proposed", a, w.Refusal(p.Metadata.Name))
	}
	if !strings.Contains(logs.String(), "signature verified") {
		t.Errorf("verification not logged:\n%s", logs.String())
	}
}

// countingTransport counts requests whose path contains a string.
type countingTransport struct {
	match string
	n     atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, c.match) {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestVerifiedDigestIsNotFetchedAgain(t *testing.T) {
	no := false
	s := newSigning(t, &signing{key: newKeySigner(t)})
	attach(t, s.subject(), s.key.bundle(t, s.cosign(t), nil), CosignSignPredicateType)
	ct := &countingTransport{match: "/referrers/"}
	w := NewWatcher(WithTransport(ct))
	p := withVerify(s.repo, canary.OCIVerify{PublicKey: s.key.publicKeyPEM(t), RequireTlog: &no})
	for range 3 {
		if a := latest(t, w, p); a == nil {
			t.Fatalf("signed artifact not proposed: %v", w.Refusal(p.Metadata.Name))
		}
	}
	if n := ct.n.Load(); n != 1 {
		t.Errorf("referrers listed %d times, want once", n)
	}
	other := withVerify(s.repo, canary.OCIVerify{PublicKey: newKeySigner(t).publicKeyPEM(t), RequireTlog: &no})
	if a := latest(t, w, other); a != nil {
		t.Errorf("a digest verified under one key passed under another: %+v", a)
	}
}

func TestProvenanceRegistryFailureIsRetryable(t *testing.T) {
	no := false
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/referrers/") {
			http.Error(rw, "referrers denied", http.StatusForbidden)
			return
		}
		reg.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	repo := strings.TrimPrefix(srv.URL, "http://") + "/models/demo"
	push(t, repo, "v1.0.0", model("v1.0.0"))
	w := NewWatcher()
	p := withVerify(repo, canary.OCIVerify{PublicKey: newKeySigner(t).publicKeyPEM(t), RequireTlog: &no})
	a, err := w.Latest(context.Background(), p)
	if err == nil || a != nil || IsUnverified(err) || canary.IsTerminal(err) {
		t.Fatalf("Latest = %+v, %v; want a retryable registry error", a, err)
	}
	if r := w.Refusal(p.Metadata.Name); r != nil {
		t.Errorf("a registry failure was recorded as a refusal: %v", r)
	}
}

func TestVerifyArtifact(t *testing.T) {
	no := false
	s := newSigning(t, &signing{key: newKeySigner(t)})
	attach(t, s.subject(), s.key.bundle(t, s.cosign(t), nil), CosignSignPredicateType)
	p := withVerify(s.repo, canary.OCIVerify{PublicKey: s.key.publicKeyPEM(t), RequireTlog: &no})
	cases := []struct {
		name     string
		plan     *canary.CanaryPlan
		uri      string
		want     error // nil: accepted
		terminal bool
	}{
		{name: "signed", plan: p, uri: "oci://" + s.subject()},
		{name: "unsigned", plan: p, uri: "oci://" + s.repo + "@" + s.other, want: ErrUnsigned},
		{name: "plan without verify", plan: plan(s.repo, ""), uri: "oci://" + s.repo + "@" + s.other},
		{name: "tag, not digest", plan: p, uri: "oci://" + s.repo + ":v1.0.0", want: canary.ErrMutableReference, terminal: true},
		{name: "not OCI", plan: p, uri: "models:/demo/1", terminal: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := NewWatcher().Verify(context.Background(), tc.plan, tc.uri)
			switch {
			case tc.want == nil && !tc.terminal && err != nil:
				t.Fatalf("Verify = %v, want accepted", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			case tc.terminal != canary.IsTerminal(err):
				t.Fatalf("Verify = %v; terminal %v, want %v", err, canary.IsTerminal(err), tc.terminal)
			}
		})
	}
}

func TestTrustedRootFile(t *testing.T) {
	no := false
	s := newSigning(t, &signing{ca: newTestCA(t), log: newTestLog(t)})
	attach(t, s.subject(), s.ca.keyless(t, releaseID, ghaIssuer, s.cosign(t), s.log), CosignSignPredicateType)
	dir := t.TempDir()
	good := filepath.Join(dir, "trusted_root.json")
	if err := os.WriteFile(good, []byte(trustedRootJSON(t, []*testCA{s.ca}, s.log)), 0o600); err != nil {
		t.Fatal(err)
	}
	keyless := func(file, inline string) *canary.CanaryPlan {
		return withVerify(s.repo, canary.OCIVerify{Issuer: ghaIssuer, Identity: releaseID, RequireSCT: &no,
			TrustedRootFile: file, TrustedRoot: inline})
	}
	broken := `{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": [{"hashAlgorithm": "MD5"}]}`
	cases := []struct {
		name     string
		plan     *canary.CanaryPlan
		ok       bool
		terminal bool
	}{
		{name: "file", plan: keyless(good, ""), ok: true},
		{name: "missing file is retryable", plan: keyless(filepath.Join(dir, "absent.json"), "")},
		{name: "unparsable root is the plan's fault", plan: keyless("", broken), terminal: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewWatcher().Latest(context.Background(), tc.plan)
			switch {
			case tc.ok && (err != nil || a == nil):
				t.Fatalf("Latest = %+v, %v; want proposed", a, err)
			case !tc.ok && (err == nil || a != nil || IsUnverified(err)):
				t.Fatalf("Latest = %+v, %v; want an error", a, err)
			case tc.terminal != canary.IsTerminal(err):
				t.Fatalf("Latest error %v: terminal %v, want %v", err, canary.IsTerminal(err), tc.terminal)
			case tc.terminal && !errors.Is(err, canary.ErrInvalidPlan):
				t.Fatalf("Latest error %v does not wrap ErrInvalidPlan", err)
			}
		})
	}
}
