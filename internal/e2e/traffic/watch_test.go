package traffic_test

import (
	"context"
	"errors"
	"sync/atomic"
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
	"github.com/canarybot/canarybot/internal/e2e/traffic"
	"github.com/canarybot/canarybot/internal/e2e/traffic/traffictest"
)

// watchedCluster is client-go's fake dynamic client holding objs, and a
// count of watches opened: the fake drops changes made before a watch
// opens, so tests change objects only once every watcher is in place.
func watchedCluster(objs ...runtime.Object) (*dynamicfake.FakeDynamicClient, *atomic.Int32) {
	dyn := fakeClient(objs...)
	var watches atomic.Int32
	dyn.PrependWatchReactor("*", func(clienttesting.Action) (bool, watch.Interface, error) {
		watches.Add(1)
		return false, nil, nil
	})
	return dyn, &watches
}

func waitWatches(t *testing.T, watches *atomic.Int32, n int32) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); watches.Load() < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d watches open, want %d", watches.Load(), n)
		}
	}
}

// runWatch runs Watch until the test ends and returns the splits it hands
// on, in order.
func runWatch(t *testing.T, dyn *dynamicfake.FakeDynamicClient, cfg traffic.Config, apply func(traffic.Split) error) <-chan traffic.Split {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	splits := make(chan traffic.Split, 16)
	done := make(chan error, 1)
	go func() {
		done <- traffic.Watch(ctx, dyn, cfg, func(s traffic.Split) error {
			// Applied before it is handed on: a test that has received a
			// split may check what applying it did.
			err := apply(s)
			splits <- s
			return err
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	return splits
}

func next(t *testing.T, splits <-chan traffic.Split, want traffic.Split) {
	t.Helper()
	select {
	case got := <-splits:
		if got != want {
			t.Fatalf("split %+v, want %+v", got, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no split; want %+v", want)
	}
}

func update(t *testing.T, dyn *dynamicfake.FakeDynamicClient, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) {
	t.Helper()
	if _, err := dyn.Resource(gvr).Namespace(obj.GetNamespace()).Update(context.Background(), obj, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update %s: %v", obj.GetName(), err)
	}
}

// TestWatchGatewayDrivesModelServers follows the qwen overlay through a
// canary start as Argo CD would apply it, object by object, into the
// simulated servers and router.
func TestWatchGatewayDrivesModelServers(t *testing.T) {
	start, step := qwen(t, desired(qwenA, "", 0)), qwen(t, desired(qwenA, qwenB, 30))
	dyn, watches := watchedCluster(start.all()...)
	s := startSim(t)
	splits := runWatch(t, dyn, traffic.Config{Namespace: traffictest.Namespace, Traffic: traffictest.Gateway()}, s.applier(t).Apply)

	next(t, splits, traffic.Split{StableURI: qwenA, CanaryURI: qwenA})
	waitWatches(t, watches, 2)

	// A change that moves no traffic hands on nothing: the next split is
	// the canary's model.
	relabelled := start.route.DeepCopy()
	relabelled.SetLabels(map[string]string{"touched": "yes"})
	update(t, dyn, traffic.HTTPRouteGVR(), relabelled)
	update(t, dyn, kservesim.GVR(), step.canary)
	next(t, splits, traffic.Split{StableURI: qwenA, CanaryURI: qwenB})
	update(t, dyn, traffic.HTTPRouteGVR(), step.route)
	next(t, splits, traffic.Split{StableURI: qwenA, CanaryURI: qwenB, CanaryPercent: 30})

	if v := s.canary.Version(); v != "2.0.0" {
		t.Errorf("canary server runs %s, want 2.0.0", v)
	}
	if sw, cw := s.router.Weights(); sw != 70 || cw != 30 {
		t.Errorf("router weights %d/%d, want 70/30", sw, cw)
	}
}

// TestWatchKServeFollowsTheStandIn runs the KServe stand-in beside Watch:
// the split moves only once the stand-in has reported the new revision.
func TestWatchKServeFollowsTheStandIn(t *testing.T) {
	obj := traffictest.Objects(t, traffictest.FraudOverlay, traffictest.KServe(), desired(fraudA, "", 0))["InferenceService/fraud-detector"]
	dyn, watches := watchedCluster(obj)
	ctx, cancel := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- kservesim.Run(ctx, dyn, kservesim.Options{Namespace: traffictest.Namespace}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-simDone; err != nil {
			t.Errorf("kservesim.Run: %v", err)
		}
	})
	splits := runWatch(t, dyn, traffic.Config{Namespace: traffictest.Namespace, Traffic: traffictest.KServe()},
		func(traffic.Split) error { return nil })

	next(t, splits, traffic.Split{StableURI: fraudA, CanaryURI: fraudA})
	waitWatches(t, watches, 2)

	live, err := dyn.Resource(kservesim.GVR()).Namespace(traffictest.Namespace).Get(ctx, "fraud-detector", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	canary10 := traffictest.Objects(t, traffictest.FraudOverlay, traffictest.KServe(), desired(fraudA, fraudB, 10))
	live.Object["spec"] = canary10["InferenceService/fraud-detector"].Object["spec"]
	update(t, dyn, kservesim.GVR(), live)
	next(t, splits, traffic.Split{StableURI: fraudA, CanaryURI: fraudB, CanaryPercent: 10})
}

func TestWatchEndsOnCallbackError(t *testing.T) {
	dyn, _ := watchedCluster(qwen(t, desired(qwenA, "", 0)).all()...)
	boom := errors.New("boom")
	err := traffic.Watch(context.Background(), dyn,
		traffic.Config{Namespace: traffictest.Namespace, Traffic: traffictest.Gateway()},
		func(traffic.Split) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("Watch: %v, want the callback's error", err)
	}
}
