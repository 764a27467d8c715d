package traffic_test

import (
	"context"
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/canarybot/canarybot/internal/e2e/traffic"
	"github.com/canarybot/canarybot/internal/e2e/traffic/traffictest"
	"github.com/canarybot/canarybot/pkg/canary"
)

// qwenLLM returns the qwen-llm overlay's two LLMInferenceServices as a
// commit expressing d builds them.
func qwenLLM(t *testing.T, d canary.Desired) (stable, can *unstructured.Unstructured) {
	t.Helper()
	objs := traffictest.Objects(t, traffictest.QwenLLMOverlay, traffictest.LLMISVC(), d)
	return objs["LLMInferenceService/qwen-llm-stable"], objs["LLMInferenceService/qwen-llm-canary"]
}

func TestLLMISVCSplit(t *testing.T) {
	l := traffictest.LLMISVC().LLMISVC
	tests := []struct {
		name    string
		d       canary.Desired
		mutate  func(stable, can *unstructured.Unstructured)
		want    traffic.Split
		wantErr bool
	}{
		{name: "no canary", d: desired(qwenA, "", 0), want: traffic.Split{StableURI: qwenA, CanaryURI: qwenA}},
		{name: "canary at 30%", d: desired(qwenA, qwenB, 30), want: traffic.Split{StableURI: qwenA, CanaryURI: qwenB, CanaryPercent: 30}},
		{name: "promoted", d: desired(qwenB, "", 0), want: traffic.Split{StableURI: qwenB, CanaryURI: qwenB}},
		{name: "member without model uri", d: desired(qwenA, qwenB, 30), wantErr: true,
			mutate: func(_, can *unstructured.Unstructured) {
				unstructured.RemoveNestedField(can.Object, "spec", "model", "uri")
			}},
		{name: "route gone", d: desired(qwenA, qwenB, 30), wantErr: true,
			mutate: func(stable, _ *unstructured.Unstructured) {
				unstructured.RemoveNestedField(stable.Object, "spec", "router", "route")
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stable, can := qwenLLM(t, tc.d)
			if tc.mutate != nil {
				tc.mutate(stable, can)
			}
			got, err := traffic.LLMISVCSplit(l, stable, can)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("split = %+v, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("split = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// Read fetches the router and both members from the API; a missing member
// is ErrNotReady.
func TestReadLLMISVC(t *testing.T) {
	stable, can := qwenLLM(t, desired(qwenA, qwenB, 30))
	scheme := runtime.NewScheme()
	gvr := traffic.LLMISVCGVR()
	lists := map[schema.GroupVersionResource]string{gvr: "LLMInferenceServiceList"}
	cfg := traffic.Config{Namespace: traffictest.Namespace, Traffic: traffictest.LLMISVC()}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, lists, stable, can)
	got, err := traffic.Read(context.Background(), dyn, cfg)
	if want := (traffic.Split{StableURI: qwenA, CanaryURI: qwenB, CanaryPercent: 30}); err != nil || got != want {
		t.Fatalf("Read = %+v, %v; want %+v", got, err, want)
	}
	dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, lists, stable)
	if _, err := traffic.Read(context.Background(), dyn, cfg); !errors.Is(err, traffic.ErrNotReady) {
		t.Fatalf("Read without the canary member: err = %v, want ErrNotReady", err)
	}
}
