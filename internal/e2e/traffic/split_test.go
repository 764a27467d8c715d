package traffic_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/canarybot/canarybot/internal/e2e/kservesim"
	"github.com/canarybot/canarybot/internal/e2e/traffic"
	"github.com/canarybot/canarybot/internal/e2e/traffic/traffictest"
	"github.com/canarybot/canarybot/pkg/canary"
)

// Pinned artifacts, as the bot writes them into storageUri.
const (
	qwenA  = "oci://ghcr.io/example/models/qwen@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	qwenB  = "oci://ghcr.io/example/models/qwen@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	fraudA = "oci://ghcr.io/example/models/fraud-detector@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	fraudB = "oci://ghcr.io/example/models/fraud-detector@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// qwenObjects are the qwen overlay's HTTPRoute and InferenceServices as
// Argo CD applies them from a commit expressing d.
type qwenObjects struct{ route, stable, canary *unstructured.Unstructured }

func qwen(t *testing.T, d canary.Desired) qwenObjects {
	t.Helper()
	objs := traffictest.Objects(t, traffictest.QwenOverlay, traffictest.Gateway(), d)
	return qwenObjects{objs["HTTPRoute/qwen"], objs["InferenceService/qwen-stable"], objs["InferenceService/qwen-canary"]}
}

func (q qwenObjects) all() []runtime.Object { return []runtime.Object{q.route, q.stable, q.canary} }

// fraud is the fraud-detector InferenceService after the KServe stand-in
// has reconciled each version in turn.
func fraud(t *testing.T, failURI func(string) bool, ds ...canary.Desired) *unstructured.Unstructured {
	t.Helper()
	var obj *unstructured.Unstructured
	for i, d := range ds {
		next := traffictest.Objects(t, traffictest.FraudOverlay, traffictest.KServe(), d)["InferenceService/fraud-detector"]
		if obj != nil {
			next.Object["status"] = obj.Object["status"]
		}
		obj = next
		st, err := kservesim.DesiredStatus(obj, time.Date(2026, 3, 1, 12, i, 0, 0, time.UTC), failURI)
		if err != nil {
			t.Fatalf("DesiredStatus: %v", err)
		}
		obj.Object["status"] = st
	}
	return obj
}

func desired(stable, can string, w int) canary.Desired {
	return canary.Desired{Stable: stable, Canary: can, CanaryWeight: w}
}

func TestGatewaySplit(t *testing.T) {
	g := traffictest.Gateway().Gateway
	setWeights := func(ws, wc int64) func(q qwenObjects) {
		return func(q qwenObjects) {
			refs, _, _ := unstructured.NestedSlice(q.route.Object, "spec", "rules")
			backends := refs[0].(map[string]any)["backendRefs"].([]any)
			backends[0].(map[string]any)["weight"], backends[1].(map[string]any)["weight"] = ws, wc
			_ = unstructured.SetNestedSlice(q.route.Object, refs, "spec", "rules")
		}
	}
	tests := []struct {
		name    string
		d       canary.Desired
		mutate  func(q qwenObjects)
		want    traffic.Split
		wantErr bool
	}{
		{name: "no canary", d: desired(qwenA, "", 0), want: traffic.Split{StableURI: qwenA, CanaryURI: qwenA}},
		{name: "canary at 10%", d: desired(qwenA, qwenB, 10), want: traffic.Split{StableURI: qwenA, CanaryURI: qwenB, CanaryPercent: 10}},
		{name: "canary at 100% before promotion", d: desired(qwenA, qwenB, 100),
			want: traffic.Split{StableURI: qwenA, CanaryURI: qwenB, CanaryPercent: 100}},
		{name: "promoted", d: desired(qwenB, "", 0), want: traffic.Split{StableURI: qwenB, CanaryURI: qwenB}},
		{name: "relative weights round to a percent", d: desired(qwenA, qwenB, 10), mutate: setWeights(1, 2),
			want: traffic.Split{StableURI: qwenA, CanaryURI: qwenB, CanaryPercent: 67}},
		{name: "both weights zero", d: desired(qwenA, qwenB, 10), mutate: setWeights(0, 0), wantErr: true},
		{name: "canary backend missing from rule 0", d: desired(qwenA, qwenB, 10), wantErr: true,
			mutate: func(q qwenObjects) {
				rules, _, _ := unstructured.NestedSlice(q.route.Object, "spec", "rules")
				rules[0].(map[string]any)["backendRefs"] = []any{map[string]any{"name": "qwen-stable-predictor", "weight": int64(100)}}
				_ = unstructured.SetNestedSlice(q.route.Object, rules, "spec", "rules")
			}},
		{name: "InferenceService without storageUri", d: desired(qwenA, qwenB, 10), wantErr: true,
			mutate: func(q qwenObjects) {
				unstructured.RemoveNestedField(q.canary.Object, "spec", "predictor", "model", "storageUri")
			}},
		{name: "route of another name", d: desired(qwenA, qwenB, 10), wantErr: true,
			mutate: func(q qwenObjects) { q.route.SetName("other") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := qwen(t, tc.d)
			if tc.mutate != nil {
				tc.mutate(q)
			}
			got, err := traffic.GatewaySplit(g, q.route, q.stable, q.canary)
			if tc.wantErr {
				if err == nil {
					t.Errorf("GatewaySplit = %+v, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("GatewaySplit = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestKServeSplit(t *testing.T) {
	failB := func(uri string) bool { return uri == fraudB }
	tests := []struct {
		name    string
		failURI func(string) bool
		ds      []canary.Desired
		want    traffic.Split
	}{
		{"first model", nil, []canary.Desired{desired(fraudA, "", 0)},
			traffic.Split{StableURI: fraudA, CanaryURI: fraudA}},
		{"canary at 10%", nil, []canary.Desired{desired(fraudA, "", 0), desired(fraudA, fraudB, 10)},
			traffic.Split{StableURI: fraudA, CanaryURI: fraudB, CanaryPercent: 10}},
		{"canary at 60%", nil, []canary.Desired{desired(fraudA, "", 0), desired(fraudA, fraudB, 10), desired(fraudA, fraudB, 60)},
			traffic.Split{StableURI: fraudA, CanaryURI: fraudB, CanaryPercent: 60}},
		{"promoted", nil, []canary.Desired{desired(fraudA, "", 0), desired(fraudA, fraudB, 10), desired(fraudB, "", 0)},
			traffic.Split{StableURI: fraudB, CanaryURI: fraudB}},
		{"reverted", nil, []canary.Desired{desired(fraudA, "", 0), desired(fraudA, fraudB, 30), desired(fraudA, "", 0)},
			traffic.Split{StableURI: fraudA, CanaryURI: fraudA}},
		{"canary that fails to load gets no traffic of its own", failB,
			[]canary.Desired{desired(fraudA, "", 0), desired(fraudA, fraudB, 10)},
			traffic.Split{StableURI: fraudA, CanaryURI: fraudA, CanaryPercent: 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := traffic.KServeSplit(fraud(t, tc.failURI, tc.ds...))
			if err != nil || got != tc.want {
				t.Errorf("KServeSplit = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestKServeSplitWithoutControllerIsNotReady(t *testing.T) {
	obj := traffictest.Objects(t, traffictest.FraudOverlay, traffictest.KServe(), desired(fraudA, "", 0))["InferenceService/fraud-detector"]
	if _, err := traffic.KServeSplit(obj); !errors.Is(err, traffic.ErrNotReady) {
		t.Errorf("KServeSplit of an InferenceService without status: %v, want ErrNotReady", err)
	}
}

func fakeClient(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		kservesim.GVR():        "InferenceServiceList",
		traffic.HTTPRouteGVR(): "HTTPRouteList",
	}, objs...)
}

func TestRead(t *testing.T) {
	q := qwen(t, desired(qwenA, qwenB, 30))
	f := fraud(t, nil, desired(fraudA, "", 0), desired(fraudA, fraudB, 10))
	gw := traffic.Config{Namespace: traffictest.Namespace, Traffic: traffictest.Gateway()}
	ks := traffic.Config{Namespace: traffictest.Namespace, Traffic: traffictest.KServe()}
	tests := []struct {
		name    string
		objs    []runtime.Object
		cfg     traffic.Config
		want    traffic.Split
		wantErr error
	}{
		{"gateway", q.all(), gw, traffic.Split{StableURI: qwenA, CanaryURI: qwenB, CanaryPercent: 30}, nil},
		{"kserve", []runtime.Object{f}, ks, traffic.Split{StableURI: fraudA, CanaryURI: fraudB, CanaryPercent: 10}, nil},
		{"gateway without its route", []runtime.Object{q.stable, q.canary}, gw, traffic.Split{}, traffic.ErrNotReady},
		{"kserve without its InferenceService", q.all(), ks, traffic.Split{}, traffic.ErrNotReady},
		{"other namespace", q.all(), traffic.Config{Namespace: "default", Traffic: traffictest.Gateway()},
			traffic.Split{}, traffic.ErrNotReady},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := traffic.Read(context.Background(), fakeClient(tc.objs...), tc.cfg)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Errorf("Read = %+v, %v; want %+v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestConfigIsValidated(t *testing.T) {
	tests := []struct {
		name string
		cfg  traffic.Config
	}{
		{"no namespace", traffic.Config{Traffic: traffictest.Gateway()}},
		{"no mode", traffic.Config{Namespace: "models"}},
		{"gateway without backends", traffic.Config{Namespace: "models", Traffic: canary.TrafficSpec{
			Mode: canary.ModeGateway, Gateway: &canary.GatewayTraffic{HTTPRoute: "qwen"}}}},
		{"kserve without InferenceService", traffic.Config{Namespace: "models", Traffic: canary.TrafficSpec{Mode: canary.ModeKServe}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := traffic.Read(context.Background(), fakeClient(), tc.cfg); err == nil || errors.Is(err, traffic.ErrNotReady) {
				t.Errorf("Read with %+v: %v, want a configuration error", tc.cfg, err)
			}
		})
	}
}
