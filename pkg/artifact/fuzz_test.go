package artifact

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, accepts only pinned references,
// and that every accepted reference's String re-parses to the same Ref.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"oci://ghcr.io/acme/llm@" + digest,
		"oci://ghcr.io/acme/llm:v2@" + digest,
		"oci://127.0.0.1:5000/models/demo@" + digest,
		"oci://[::1]:5000/a/b@" + digest,
		"OCI://Registry.Example.COM/a/b@" + digest,
		"models:/fraud-detector/12",
		"s3://my-bucket/models/llm.bin?versionId=3/L4kq+Jl=",
		"gs://bucket/models/llm.tar#1712345678901234",
		// Mutable.
		"oci://ghcr.io/x/y:v2",
		"oci://ghcr.io/x/y",
		"models:/fraud@champion",
		"models:/fraud/latest",
		"models:/fraud/Production",
		"s3://b-b/k",
		"gs://bucket/k",
		"hf://Qwen/Qwen2.5-7B",
		// Malformed.
		"",
		"oci://r.io/x@sha256:abc",
		"oci://r.io@" + digest,
		"oci://r.io/x@sha256:" + strings.ToUpper(hex64),
		"oci://r.io:0/x@" + digest,
		"oci://[::1/x@" + digest,
		"models:/m/01",
		"s3://bucket/k?versionId=1&a=b",
		"gs://bucket/k#-1",
		"oci://r.io/x y@" + digest,
		"s3://bucket/\x00?versionId=1",
		"ftp://x/y",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if r != (Ref{}) {
				t.Fatalf("Parse(%q) returned %#v with error %v", s, r, err)
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrMutable) {
				t.Fatalf("Parse(%q) error %v is neither ErrInvalid nor ErrMutableReference", s, err)
			}
			return
		}
		if !r.Pinned() {
			t.Fatalf("Parse(%q) accepted unpinned %#v", s, r)
		}
		canonical := r.String()
		if len(canonical) > MaxLen {
			t.Fatalf("String() of %q is %d bytes long", s, len(canonical))
		}
		again, err := Parse(canonical)
		if err != nil {
			t.Fatalf("Parse(%q) = %#v, but its String %q does not parse: %v", s, r, canonical, err)
		}
		if again != r {
			t.Fatalf("Parse(%q) = %#v, but Parse(String()) = %#v", s, r, again)
		}
		if again.String() != canonical {
			t.Fatalf("String() is not stable: %q then %q", canonical, again.String())
		}
	})
}
