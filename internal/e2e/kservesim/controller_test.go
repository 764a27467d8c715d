package kservesim_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/canarybot/canarybot/internal/e2e/kservesim"
	"github.com/canarybot/canarybot/pkg/canary"
)

// fakeCluster is client-go's fake dynamic client holding objs. started
// receives once the first watch on InferenceServices is open: the fake
// drops changes made before that.
func fakeCluster(objs ...runtime.Object) (*dynamicfake.FakeDynamicClient, <-chan struct{}) {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{kservesim.GVR(): "InferenceServiceList"}, objs...)
	started := make(chan struct{}, 1)
	dyn.PrependWatchReactor(kservesim.GVR().Resource, func(clienttesting.Action) (bool, watch.Interface, error) {
		select {
		case started <- struct{}{}:
		default:
		}
		return false, nil, nil
	})
	return dyn, started
}

// waitTraffic polls the InferenceService until its traffic equals want.
func waitTraffic(t *testing.T, dyn *dynamicfake.FakeDynamicClient, name string, want []kservesim.Target) *unstructured.Unstructured {
	t.Helper()
	var last []kservesim.Target
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		obj, err := dyn.Resource(kservesim.GVR()).Namespace("models").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		if last, err = kservesim.Traffic(obj); err == nil && reflect.DeepEqual(last, want) {
			return obj
		}
	}
	t.Fatalf("traffic of %s is %+v, want %+v", name, last, want)
	return nil
}

func TestRunReconcilesLiveObjects(t *testing.T) {
	dyn, started := fakeCluster(fraud(t, canary.Desired{Stable: uriA}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- kservesim.Run(ctx, dyn, kservesim.Options{Namespace: "models", Now: func() time.Time { return t0 }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	obj := waitTraffic(t, dyn, "fraud-detector",
		[]kservesim.Target{{RevisionName: rev1, LatestRevision: true, Percent: 100, StorageURI: uriA}})
	if hs := argoHealth(t, obj); hs.Status != "Healthy" {
		t.Errorf("Argo CD health of the written status: %s %q", hs.Status, hs.Message)
	}
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("no watch opened")
	}

	// Argo CD applies the next commit: the canary at 10%.
	next := fraud(t, canary.Desired{Stable: uriA, Canary: uriB, CanaryWeight: 10})
	obj.Object["spec"] = next.Object["spec"]
	if _, err := dyn.Resource(kservesim.GVR()).Namespace("models").Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("apply canary: %v", err)
	}
	waitTraffic(t, dyn, "fraud-detector", []kservesim.Target{
		{RevisionName: rev2, LatestRevision: true, Percent: 10, StorageURI: uriB},
		{RevisionName: rev1, Tag: "prev", Percent: 90, StorageURI: uriA},
	})
}

func TestRunRefusesNilClient(t *testing.T) {
	if err := kservesim.Run(context.Background(), nil, kservesim.Options{}); err == nil {
		t.Error("Run accepted a nil client")
	}
}
