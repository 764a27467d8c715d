package kservesim_test

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/canarybot/canarybot/internal/e2e/kservesim"
	"github.com/canarybot/canarybot/internal/e2e/traffic/traffictest"
	"github.com/canarybot/canarybot/pkg/canary"
)

// Pinned artifacts, as the bot writes them into storageUri.
const (
	uriA = "oci://ghcr.io/example/models/fraud-detector@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	uriB = "oci://ghcr.io/example/models/fraud-detector@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	uriC = "oci://ghcr.io/example/models/fraud-detector@sha256:3333333333333333333333333333333333333333333333333333333333333333"
	qwen = "oci://ghcr.io/example/models/qwen@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

// t0 is the first reconcile's time; later reconciles add minutes.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fraud is the fraud-detector InferenceService (Serverless, kserve mode) as
// Argo CD would apply it from a commit expressing d.
func fraud(t *testing.T, d canary.Desired) *unstructured.Unstructured {
	t.Helper()
	objs := traffictest.Objects(t, traffictest.FraudOverlay, traffictest.KServe(), d)
	o, ok := objs["InferenceService/fraud-detector"]
	if !ok {
		t.Fatalf("no InferenceService/fraud-detector in %v", keys(objs))
	}
	return o
}

// qwenStable is the qwen-stable InferenceService (RawDeployment, gateway
// mode) serving qwen.
func qwenStable(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	objs := traffictest.Objects(t, traffictest.QwenOverlay, traffictest.Gateway(), canary.Desired{Stable: qwen})
	o, ok := objs["InferenceService/qwen-stable"]
	if !ok {
		t.Fatalf("no InferenceService/qwen-stable in %v", keys(objs))
	}
	return o
}

func keys(m map[string]*unstructured.Unstructured) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// reconcileAll feeds each spec version in turn to DesiredStatus, carrying
// the status forward as the kube-apiserver would, one minute apart. It
// checks that every result is a fixed point, so that the controller
// settles, and returns the last object with its status.
func reconcileAll(t *testing.T, failURI func(string) bool, versions ...*unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	var st map[string]any
	var obj *unstructured.Unstructured
	for i, v := range versions {
		obj = v.DeepCopy()
		obj.SetGeneration(int64(i + 1))
		if st != nil {
			obj.Object["status"] = st
		}
		now := t0.Add(time.Duration(i) * time.Minute)
		var err error
		if st, err = kservesim.DesiredStatus(obj, now, failURI); err != nil {
			t.Fatalf("version %d: DesiredStatus: %v", i, err)
		}
		obj.Object["status"] = st
		again, err := kservesim.DesiredStatus(obj, now.Add(time.Hour), failURI)
		if err != nil {
			t.Fatalf("version %d: DesiredStatus again: %v", i, err)
		}
		if !equality.Semantic.DeepEqual(st, again) {
			t.Fatalf("version %d: status is not a fixed point:\nfirst  %v\nsecond %v", i, st, again)
		}
	}
	return obj
}

func setAnnotation(o *unstructured.Unstructured, k, v string) *unstructured.Unstructured {
	o = o.DeepCopy()
	ann := o.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[k] = v
	o.SetAnnotations(ann)
	return o
}
