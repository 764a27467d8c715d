package artifact_test

import (
	"errors"
	"testing"

	"github.com/canarybot/canarybot/pkg/artifact"
	"github.com/canarybot/canarybot/pkg/canary"
)

// pkg/artifact is a leaf; code written against canary.ErrMutableReference
// must keep matching its mutable-reference errors.
func TestMutableMatchesCanarySentinel(t *testing.T) {
	_, err := artifact.Parse("oci://ghcr.io/x/y:v2")
	if !errors.Is(err, canary.ErrMutableReference) || !errors.Is(err, artifact.ErrMutable) {
		t.Fatalf("error %v matches neither canary.ErrMutableReference nor artifact.ErrMutable", err)
	}
	if _, err := artifact.Parse("oci://r.io/x@sha256:abc"); errors.Is(err, canary.ErrMutableReference) {
		t.Fatalf("a malformed reference matches canary.ErrMutableReference: %v", err)
	}
}

func TestCheckMLflowName(t *testing.T) {
	for _, ok := range []string{"fraud-detector", "main.ml.churn_v2", "A1"} {
		if err := artifact.CheckMLflowName(ok); err != nil {
			t.Errorf("CheckMLflowName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "a b", "a/b", "it's"} {
		if err := artifact.CheckMLflowName(bad); err == nil {
			t.Errorf("CheckMLflowName(%q) accepted it", bad)
		}
	}
}
