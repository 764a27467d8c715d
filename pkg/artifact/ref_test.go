package artifact

import (
	"errors"
	"strings"
	"testing"
)

const (
	hex64  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	digest = "sha256:" + hex64
)

func TestParsePinned(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
		str  string // canonical form, when it differs from in
	}{
		{in: "oci://ghcr.io/acme/llm@" + digest,
			want: Ref{Scheme: SchemeOCI, Host: "ghcr.io", Path: "acme/llm", Digest: digest}},
		{in: "oci://127.0.0.1:5000/models/demo@" + digest,
			want: Ref{Scheme: SchemeOCI, Host: "127.0.0.1:5000", Path: "models/demo", Digest: digest}},
		{in: "oci://localhost:5000/m@" + digest,
			want: Ref{Scheme: SchemeOCI, Host: "localhost:5000", Path: "m", Digest: digest}},
		{in: "oci://[::1]:5000/a/b@" + digest,
			want: Ref{Scheme: SchemeOCI, Host: "[::1]:5000", Path: "a/b", Digest: digest}},
		{in: "oci://ghcr.io/acme/llm:v2.1.0@" + digest,
			want: Ref{Scheme: SchemeOCI, Host: "ghcr.io", Path: "acme/llm", Tag: "v2.1.0", Digest: digest}},
		{in: "oci://reg.example.com/a-b/c__d/e.f--g@" + digest,
			want: Ref{Scheme: SchemeOCI, Host: "reg.example.com", Path: "a-b/c__d/e.f--g", Digest: digest}},
		{in: "OCI://GHCR.io/acme/llm@" + digest, str: "oci://ghcr.io/acme/llm@" + digest,
			want: Ref{Scheme: SchemeOCI, Host: "ghcr.io", Path: "acme/llm", Digest: digest}},
		{in: "oci://r.io/x@sha512:" + hex64 + hex64,
			want: Ref{Scheme: SchemeOCI, Host: "r.io", Path: "x", Digest: "sha512:" + hex64 + hex64}},
		{in: "models:/fraud-detector/12",
			want: Ref{Scheme: SchemeMLflow, Path: "fraud-detector", Version: "12"}},
		{in: "models:/main.ml.churn_v2/1",
			want: Ref{Scheme: SchemeMLflow, Path: "main.ml.churn_v2", Version: "1"}},
		{in: "s3://my-bucket/models/llm/model.safetensors?versionId=3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
			want: Ref{Scheme: SchemeS3, Host: "my-bucket", Path: "models/llm/model.safetensors",
				Version: "3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"}},
		{in: "gs://my_bucket/models/llm.tar#1712345678901234",
			want: Ref{Scheme: SchemeGCS, Host: "my_bucket", Path: "models/llm.tar", Version: "1712345678901234"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Parse = %#v, want %#v", got, tt.want)
			}
			if !got.Pinned() {
				t.Error("Pinned() = false")
			}
			want := tt.str
			if want == "" {
				want = tt.in
			}
			if got.String() != want {
				t.Errorf("String() = %q, want %q", got.String(), want)
			}
		})
	}
}

func TestParseMutable(t *testing.T) {
	tests := []struct {
		in  string
		why string // must appear in the message
	}{
		{"oci://ghcr.io/x/y:v2", `tag "v2" can move to another digest; pin it as oci://ghcr.io/x/y@sha256:<digest>`},
		{"oci://ghcr.io/x/y", `tag "latest"`},
		{"models:/fraud@champion", `alias "champion" can be reassigned`},
		{"models:/fraud/latest", `"latest" names whichever version`},
		{"models:/fraud/Production", `"Production" names whichever version`},
		{"models:/fraud", "no version; pin it as models:/fraud/<version>"},
		{"s3://bucket/key", "pin it as s3://bucket/key?versionId=<id>"},
		{"s3://bucket/key?versionId=null", `versionId "null"`},
		{"gs://bucket/key", "pin it as gs://bucket/key#<generation>"},
		{"hf://Qwen/Qwen2.5-7B-Instruct", "Hugging Face"},
		{"https://example.com/model.bin", "URL"},
		{"pvc://models/llm", "volume"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if !errors.Is(err, ErrMutable) {
				t.Fatalf("Parse error = %v, want ErrMutableReference", err)
			}
			var me *MutableError
			if !errors.As(err, &me) {
				t.Fatalf("error %T is not a *MutableError", err)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("error %q does not say %q", err, tt.why)
			}
			if errors.Is(err, ErrInvalid) {
				t.Error("a mutable reference is not ErrInvalid")
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name, in, why string
	}{
		{"empty", "", "empty reference"},
		{"short digest", "oci://r.io/x@sha256:abc", "3 hex characters, want 64"},
		{"long digest", "oci://r.io/x@" + digest + "0", "65 hex characters"},
		{"upper hex", "oci://r.io/x@sha256:" + strings.ToUpper(hex64), "not lower-case hex"},
		{"non-hex", "oci://r.io/x@sha256:" + strings.Repeat("g", 64), "not lower-case hex"},
		{"md5", "oci://r.io/x@md5:" + hex64, `algorithm "md5"`},
		{"no algorithm", "oci://r.io/x@" + hex64, "no algorithm"},
		{"empty digest", "oci://r.io/x@", "empty digest"},
		{"empty path", "oci://r.io@" + digest, "empty repository path"},
		{"empty path slash", "oci://r.io/@" + digest, "empty repository path"},
		{"empty host", "oci:///x@" + digest, "empty registry host"},
		{"upper path", "oci://r.io/Acme/x@" + digest, `component "Acme"`},
		{"double slash", "oci://r.io/a//b@" + digest, `component ""`},
		{"bad port", "oci://r.io:99999/x@" + digest, "port"},
		{"empty tag", "oci://r.io/x:@" + digest, "empty tag"},
		{"bad tag", "oci://r.io/x:.v1@" + digest, "invalid character"},
		{"bad host", "oci://-r.io/x@" + digest, "starts or ends"},
		{"unknown scheme", "ftp://x/y", "unknown scheme"},
		{"no scheme", "ghcr.io/x/y@" + digest, "missing scheme; an OCI reference is written oci://"},
		{"space", "oci://r.io/x y@" + digest, "space"},
		{"tab", "s3://bucket/k\tx?versionId=1", "control character"},
		{"newline", "models:/m/1\n", "control character"},
		{"nul", "gs://bucket/k\x00#1", "control character"},
		{"invalid utf8", "s3://bucket/\xff?versionId=1", "UTF-8"},
		{"too long", "s3://bucket/" + strings.Repeat("k", MaxLen) + "?versionId=1", "over the limit of 4096"},
		{"mlflow version zero", "models:/m/0", "not a positive decimal"},
		{"mlflow leading zero", "models:/m/01", "not a positive decimal"},
		{"mlflow bad version", "models:/m/v1", "not a positive decimal"},
		{"mlflow extra path", "models:/m/1/x", "no further path"},
		{"mlflow empty name", "models:/", "empty model name"},
		{"mlflow profile", "models://prof/m/1", "want models:/<name>/<version>"},
		{"mlflow empty alias", "models:/m@", "empty alias"},
		{"s3 no key", "s3://bucket", "empty object key"},
		{"s3 short bucket", "s3://b/k?versionId=1", "3 to 63"},
		{"s3 upper bucket", "s3://Bucket/k?versionId=1", "invalid character"},
		{"s3 other param", "s3://bucket/k?version=1", "unknown query parameter"},
		{"s3 two params", "s3://bucket/k?versionId=1&x=2", "single versionId"},
		{"s3 empty id", "s3://bucket/k?versionId=", "empty versionId"},
		{"s3 prefix", "s3://bucket/models/?versionId=1", "not the prefix"},
		{"gs bad generation", "gs://bucket/k#abc", "not a positive decimal"},
		{"gs empty generation", "gs://bucket/k#", "empty generation"},
		{"scheme without slashes", "oci:r.io/x@" + digest, "want oci://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %#v, want an error", tt.in, r)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if errors.Is(err, ErrMutable) {
				t.Errorf("malformed input reported as mutable: %v", err)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("error %q does not say %q", err, tt.why)
			}
		})
	}
}

func TestLongInputIsShortenedInMessage(t *testing.T) {
	_, err := Parse("s3://bucket/" + strings.Repeat("k", 2*MaxLen))
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("error is %d bytes long: %v", len(err.Error()), err)
	}
}

func TestZeroRef(t *testing.T) {
	var r Ref
	if r.Pinned() || r.String() != "" || r.Repository() != "" {
		t.Fatalf("zero Ref: pinned %v, string %q", r.Pinned(), r.String())
	}
	unpinned := Ref{Scheme: SchemeOCI, Host: "r.io", Path: "x", Tag: "v1"}
	if unpinned.Pinned() {
		t.Fatal("a Ref without a digest reports pinned")
	}
}
