package kservesim_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/canarybot/canarybot/internal/e2e/kservesim"
	"github.com/canarybot/canarybot/pkg/canary"
)

// Revision names the stand-in gives fraud-detector's revisions.
const (
	rev1 = "fraud-detector-predictor-00001"
	rev2 = "fraud-detector-predictor-00002"
	rev3 = "fraud-detector-predictor-00003"
)

func TestServerlessTrafficFollowsKServe(t *testing.T) {
	d := func(stable, can string, w int) canary.Desired {
		return canary.Desired{Stable: stable, Canary: can, CanaryWeight: w}
	}
	stableA, stableB := fraud(t, d(uriA, "", 0)), fraud(t, d(uriB, "", 0))
	b10, b30, b100 := fraud(t, d(uriA, uriB, 10)), fraud(t, d(uriA, uriB, 30)), fraud(t, d(uriA, uriB, 100))
	c10 := fraud(t, d(uriB, uriC, 10))
	// Pinning the rolled-out revision back to 20% without a new model is
	// KServe's rollback: the previous rolled-out revision takes the rest.
	pinned := stableB.DeepCopy()
	if err := unstructured.SetNestedField(pinned.Object, int64(20), "spec", "predictor", "canaryTrafficPercent"); err != nil {
		t.Fatal(err)
	}
	tagged := setAnnotation(b10, "serving.kserve.io/enable-tag-routing", "true")
	failB := func(uri string) bool { return uri == uriB }

	type rolled struct{ latest, previous string }
	tests := []struct {
		name     string
		versions []*unstructured.Unstructured
		failURI  func(string) bool
		want     []kservesim.Target
		rolled   rolled
	}{
		{"first revision takes everything", []*unstructured.Unstructured{stableA}, nil,
			[]kservesim.Target{{RevisionName: rev1, LatestRevision: true, Percent: 100, StorageURI: uriA}},
			rolled{rev1, ""}},
		{"canary at 10%", []*unstructured.Unstructured{stableA, b10}, nil,
			[]kservesim.Target{
				{RevisionName: rev2, LatestRevision: true, Percent: 10, StorageURI: uriB},
				{RevisionName: rev1, Tag: "prev", Percent: 90, StorageURI: uriA},
			}, rolled{rev1, ""}},
		{"canary raised to 30% keeps its revision", []*unstructured.Unstructured{stableA, b10, b30}, nil,
			[]kservesim.Target{
				{RevisionName: rev2, LatestRevision: true, Percent: 30, StorageURI: uriB},
				{RevisionName: rev1, Tag: "prev", Percent: 70, StorageURI: uriA},
			}, rolled{rev1, ""}},
		{"canary at 100% is rolled out", []*unstructured.Unstructured{stableA, b10, b100}, nil,
			[]kservesim.Target{{RevisionName: rev2, LatestRevision: true, Percent: 100, StorageURI: uriB}},
			rolled{rev2, rev1}},
		{"next canary splits with the promoted model", []*unstructured.Unstructured{stableA, b10, stableB, c10}, nil,
			[]kservesim.Target{
				{RevisionName: rev3, LatestRevision: true, Percent: 10, StorageURI: uriC},
				{RevisionName: rev2, Tag: "prev", Percent: 90, StorageURI: uriB},
			}, rolled{rev2, rev1}},
		{"revert cuts a new revision of the old model", []*unstructured.Unstructured{stableA, b30, stableA}, nil,
			[]kservesim.Target{{RevisionName: rev3, LatestRevision: true, Percent: 100, StorageURI: uriA}},
			rolled{rev3, rev1}},
		{"pinned rollback", []*unstructured.Unstructured{stableA, stableB, pinned}, nil,
			[]kservesim.Target{
				{RevisionName: rev2, LatestRevision: true, Percent: 20, StorageURI: uriB},
				{RevisionName: rev1, Tag: "prev", Percent: 80, StorageURI: uriA},
			}, rolled{rev1, rev1}},
		{"failed canary: its share stays on the last ready revision", []*unstructured.Unstructured{stableA, b10}, failB,
			[]kservesim.Target{
				{RevisionName: rev1, LatestRevision: true, Percent: 10, StorageURI: uriA},
				{RevisionName: rev1, Tag: "prev", Percent: 90, StorageURI: uriA},
			}, rolled{rev1, ""}},
		{"tag routing tags the latest share", []*unstructured.Unstructured{stableA, tagged}, nil,
			[]kservesim.Target{
				{RevisionName: rev2, Tag: "latest", LatestRevision: true, Percent: 10, StorageURI: uriB},
				{RevisionName: rev1, Tag: "prev", Percent: 90, StorageURI: uriA},
			}, rolled{rev1, ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj := reconcileAll(t, tc.failURI, tc.versions...)
			got, err := kservesim.Traffic(obj)
			if err != nil {
				t.Fatalf("Traffic: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("traffic:\n got %+v\nwant %+v", got, tc.want)
			}
			latest, _, _ := unstructured.NestedString(obj.Object, "status", "components", "predictor", "latestRolledoutRevision")
			previous, _, _ := unstructured.NestedString(obj.Object, "status", "components", "predictor", "previousRolledoutRevision")
			if (rolled{latest, previous}) != tc.rolled {
				t.Errorf("rolled out (latest, previous) = (%q, %q), want %+v", latest, previous, tc.rolled)
			}
			if g, _, _ := unstructured.NestedInt64(obj.Object, "status", "observedGeneration"); g != obj.GetGeneration() {
				t.Errorf("observedGeneration %d, want %d", g, obj.GetGeneration())
			}
		})
	}
}

func TestRawDeploymentStatus(t *testing.T) {
	obj := reconcileAll(t, nil, qwenStable(t))
	if _, err := kservesim.Traffic(obj); !errors.Is(err, kservesim.ErrNoTraffic) {
		t.Errorf("Traffic of a raw deployment: %v, want ErrNoTraffic", err)
	}
	tests := []struct {
		path []string
		want string
	}{
		{[]string{"status", "deploymentMode"}, "RawDeployment"},
		{[]string{"status", "url"}, "http://qwen-stable-models.example.com"},
		{[]string{"status", "components", "predictor", "url"}, "http://qwen-stable-predictor-models.example.com"},
		{[]string{"status", "modelStatus", "transitionStatus"}, "UpToDate"},
		{[]string{"status", "modelStatus", "states", "activeModelState"}, "Loaded"},
	}
	for _, tc := range tests {
		if got, _, _ := unstructured.NestedString(obj.Object, tc.path...); got != tc.want {
			t.Errorf("%v = %q, want %q", tc.path, got, tc.want)
		}
	}
}

// TestConditionTransitionTimes checks Knative's rule: a condition's
// lastTransitionTime moves only when the condition changes.
func TestConditionTransitionTimes(t *testing.T) {
	stable := fraud(t, canary.Desired{Stable: uriA})
	canary10 := fraud(t, canary.Desired{Stable: uriA, Canary: uriB, CanaryWeight: 10})
	failing := setAnnotation(canary10, kservesim.FailAnnotation, "true")
	at := func(min int) string { return t0.Add(time.Duration(min) * time.Minute).Format(time.RFC3339) }
	tests := []struct {
		name     string
		versions []*unstructured.Unstructured
		want     map[string]string // condition type -> lastTransitionTime
	}{
		{"ready at once", []*unstructured.Unstructured{stable},
			map[string]string{"Ready": at(0), "PredictorReady": at(0), "IngressReady": at(0)}},
		{"unchanged through a healthy canary", []*unstructured.Unstructured{stable, canary10, canary10},
			map[string]string{"Ready": at(0), "PredictorReady": at(0), "PredictorRouteReady": at(0)}},
		{"moves when the canary fails", []*unstructured.Unstructured{stable, failing},
			map[string]string{"Ready": at(1), "PredictorConfigurationReady": at(1), "PredictorRouteReady": at(0)}},
		{"moves back on recovery", []*unstructured.Unstructured{stable, failing, failing, canary10},
			map[string]string{"Ready": at(3), "PredictorReady": at(3), "RoutesReady": at(0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj := reconcileAll(t, nil, tc.versions...)
			conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
			got := map[string]string{}
			for _, c := range conds {
				m := c.(map[string]any)
				got[m["type"].(string)], _ = m["lastTransitionTime"].(string)
			}
			for typ, want := range tc.want {
				if got[typ] != want {
					t.Errorf("%s lastTransitionTime = %q, want %q", typ, got[typ], want)
				}
			}
		})
	}
}

func TestDesiredStatusRefusesOtherKinds(t *testing.T) {
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "qwen", "namespace": "models"},
	}}
	if _, err := kservesim.DesiredStatus(route, t0, nil); err == nil {
		t.Error("DesiredStatus accepted an HTTPRoute")
	}
}
