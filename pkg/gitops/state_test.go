package gitops

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestValidatePlanName(t *testing.T) {
	for _, ok := range []string{"llama", "llama-3-8b", "a", "llama.v2", strings.Repeat("a", 63)} {
		if err := ValidatePlanName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "..", "../x", "a/b", "Llama", "-a", "a-", "a..b", ".a", "a.", "a b",
		strings.Repeat("a", 64), strings.Repeat("a.", 127) + "a"} {
		if err := ValidatePlanName(bad); !errors.Is(err, canary.ErrInvalidPlan) {
			t.Errorf("%q: err = %v, want ErrInvalidPlan", bad, err)
		}
	}
	if got := canary.StatePath("llama"); got != ".canarybot/state/llama.yaml" {
		t.Errorf("StatePath = %q", got)
	}
	if err := CheckPath(canary.StatePath("llama.v2")); err != nil {
		t.Errorf("StatePath of a valid name is unsafe: %v", err)
	}
}

func testState() canary.RolloutState {
	return canary.RolloutState{
		Metadata: canary.ObjectMeta{Name: "llama"},
		Status: canary.StateStatus{
			Phase:         canary.PhaseProgressing,
			Stable:        canary.Artifact{URI: "oci://r/llama@sha256:aa", Version: "v1"},
			Candidate:     canary.Artifact{URI: "oci://r/llama@sha256:bb", Version: "v2"},
			StepIndex:     1,
			Weight:        25,
			StepStartedAt: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		},
	}
}

func TestReadStateFromRemote(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	r := openRepo(t, testOptions(t, rm.url))
	st := testState()
	st.APIVersion, st.Kind = canary.APIVersion, canary.KindState
	b, err := canary.MarshalState(&st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
		return &canary.Change{Files: map[string][]byte{
			canary.StatePath("llama"):        b,
			canary.StatePath("mistral"):      []byte("apiVersion: canarybot.dev/v1alpha1\nkind: RolloutState\n"),
			".canarybot/state/README.md":     []byte("not a state\n"),
			".canarybot/state/Bad_Name.yaml": []byte("x\n"),
		}, Subject: "states"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	mem, err := OpenReadOnly(ctx, Options{URL: rm.url})
	if err != nil {
		t.Fatal(err)
	}
	plans, err := mem.StatePlans(ctx, "")
	if err != nil || !reflect.DeepEqual(plans, []string{"llama", "mistral"}) {
		t.Errorf("StatePlans = %v, %v", plans, err)
	}
	s, err := mem.ReadState(ctx, "", "llama")
	if err != nil || s == nil || s.Status.Weight != 25 || s.Status.Candidate.Version != "v2" {
		t.Errorf("ReadState = %+v, %v", s, err)
	}
	if s, err := mem.ReadState(ctx, "", "absent"); s != nil || err != nil {
		t.Errorf("absent plan: %+v, %v; want nil, nil", s, err)
	}
	if _, err := mem.ReadState(ctx, "", "../etc"); !errors.Is(err, canary.ErrInvalidPlan) {
		t.Errorf("traversing plan name: %v", err)
	}
}
