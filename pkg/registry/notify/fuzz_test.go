package notify

import (
	"errors"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/artifact"
)

// FuzzParseEnvelope checks that ParseEnvelope never panics, fails only
// with ErrMalformed, and that every manifest push it lets through names a
// well-formed repository and digest.
func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{
		pushEnvelope,
		`{"events":[]}`,
		`{"events":null}`,
		`{"events":[{}]}`,
		`{"events":[{"action":"push","target":{"tag":"v1","digest":"sha256:x","repository":"a/../b"}}]}`,
		`{"events":[{"action":"push","target":{"tag":"v1","digest":"sha256:` + strings.Repeat("a", 64) + `","repository":"A"}}]}`,
		`[]`, `null`, `{`, `{"events":[]}{}`, `{"events":"x"}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ParseEnvelope(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseEnvelope error %v is not ErrMalformed", err)
			}
			return
		}
		if len(env.Events) > MaxEvents {
			t.Fatalf("%d events accepted", len(env.Events))
		}
		for _, ev := range env.ManifestPushes() {
			if ev.Action != "push" {
				t.Fatalf("non-push event %+v let through", ev)
			}
			ref, err := artifact.Parse("oci://r.io/" + ev.Target.Repository + "@" + ev.Target.Digest)
			if err != nil || !ref.Pinned() || ref.Path != ev.Target.Repository {
				t.Fatalf("push %+v let through with a bad repository or digest: %v", ev.Target, err)
			}
		}
	})
}
