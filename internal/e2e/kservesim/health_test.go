package kservesim_test

import (
	"strings"
	"testing"

	argolua "github.com/argoproj/argo-cd/v2/util/lua"
	"github.com/argoproj/gitops-engine/pkg/health"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/canarybot/canarybot/internal/e2e/kservesim"
	"github.com/canarybot/canarybot/pkg/canary"
)

// argoHealth runs Argo CD's own built-in health check for obj: the Lua
// script resource_customizations/serving.kserve.io/InferenceService/health.lua
// of the argo-cd module, through the code path the application controller
// uses when no override is configured.
func argoHealth(t *testing.T, obj *unstructured.Unstructured) *health.HealthStatus {
	t.Helper()
	script, _, err := argolua.VM{}.GetHealthScript(obj)
	if err != nil || !strings.Contains(script, "InferenceService") {
		t.Fatalf("Argo CD has no built-in InferenceService health script (err %v)", err)
	}
	hs, err := argolua.ResourceHealthOverrides(nil).GetResourceHealth(obj)
	if err != nil {
		t.Fatalf("Argo CD health check: %v", err)
	}
	if hs == nil {
		t.Fatal("Argo CD health check returned no status")
	}
	return hs
}

func TestArgoCDHealthOfStandInStatus(t *testing.T) {
	stable := fraud(t, canary.Desired{Stable: uriA})
	canary10 := fraud(t, canary.Desired{Stable: uriA, Canary: uriB, CanaryWeight: 10})
	noPercent := stable.DeepCopy()
	unstructured.RemoveNestedField(noPercent.Object, "spec", "predictor", "canaryTrafficPercent")
	noURI := stable.DeepCopy()
	unstructured.RemoveNestedField(noURI.Object, "spec", "predictor", "model", "storageUri")
	raw := qwenStable(t)
	failB := func(uri string) bool { return uri == uriB }

	tests := []struct {
		name     string
		versions []*unstructured.Unstructured
		failURI  func(string) bool
		want     health.HealthStatusCode
		// wantMsg is a substring of Argo CD's health message.
		wantMsg string
	}{
		{"serverless, canaryTrafficPercent 100", []*unstructured.Unstructured{stable}, nil, health.HealthStatusHealthy, "healthy"},
		{"serverless, no canaryTrafficPercent", []*unstructured.Unstructured{noPercent}, nil, health.HealthStatusHealthy, "healthy"},
		{"serverless canary at 10%", []*unstructured.Unstructured{stable, canary10}, nil, health.HealthStatusHealthy, "healthy"},
		{"raw deployment", []*unstructured.Unstructured{raw}, nil, health.HealthStatusHealthy, "healthy"},
		{"canary annotated to fail", []*unstructured.Unstructured{stable, setAnnotation(canary10, kservesim.FailAnnotation, "true")},
			nil, health.HealthStatusDegraded, "BlockedByFailedLoad"},
		{"canary model selected by FailURI", []*unstructured.Unstructured{stable, canary10}, failB,
			health.HealthStatusDegraded, "failed to load"},
		{"raw deployment annotated to fail", []*unstructured.Unstructured{setAnnotation(raw, kservesim.FailAnnotation, "true")},
			nil, health.HealthStatusDegraded, "MinimumReplicasUnavailable"},
		{"annotation other than true", []*unstructured.Unstructured{setAnnotation(stable, kservesim.FailAnnotation, "false")},
			nil, health.HealthStatusHealthy, "healthy"},
		{"recovers when the annotation goes", []*unstructured.Unstructured{stable, setAnnotation(canary10, kservesim.FailAnnotation, "true"), canary10},
			nil, health.HealthStatusHealthy, "healthy"},
		{"predictor without storageUri", []*unstructured.Unstructured{noURI}, nil, health.HealthStatusDegraded, "InvalidSpec"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj := reconcileAll(t, tc.failURI, tc.versions...)
			hs := argoHealth(t, obj)
			if hs.Status != tc.want || !strings.Contains(hs.Message, tc.wantMsg) {
				t.Errorf("Argo CD health = %s %q, want %s containing %q", hs.Status, hs.Message, tc.want, tc.wantMsg)
			}
		})
	}
}

// TestArgoCDHealthOfOtherStatuses pins down how the same script judges
// statuses the stand-in does not settle on, so that the Healthy verdicts
// above are not vacuous.
func TestArgoCDHealthOfOtherStatuses(t *testing.T) {
	healthy := reconcileAll(t, nil, fraud(t, canary.Desired{Stable: uriA}))
	tests := []struct {
		name   string
		mutate func(o *unstructured.Unstructured)
		want   health.HealthStatusCode
	}{
		{"no status: what Argo CD sees without a KServe controller", func(o *unstructured.Unstructured) {
			delete(o.Object, "status")
		}, health.HealthStatusProgressing},
		{"PredictorReady False while the model is up to date", func(o *unstructured.Unstructured) {
			setCondition(t, o, "PredictorReady", "False", "RevisionMissing")
		}, health.HealthStatusProgressing},
		{"Ready Unknown", func(o *unstructured.Unstructured) {
			setCondition(t, o, "Ready", "Unknown", "")
		}, health.HealthStatusProgressing},
		{"model load in progress", func(o *unstructured.Unstructured) {
			setTransition(t, o, "InProgress")
		}, health.HealthStatusProgressing},
		{"model load failed with every condition True", func(o *unstructured.Unstructured) {
			setTransition(t, o, "BlockedByFailedLoad")
		}, health.HealthStatusDegraded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := healthy.DeepCopy()
			tc.mutate(o)
			if hs := argoHealth(t, o); hs.Status != tc.want {
				t.Errorf("Argo CD health = %s %q, want %s", hs.Status, hs.Message, tc.want)
			}
		})
	}
}

func setCondition(t *testing.T, o *unstructured.Unstructured, typ, status, reason string) {
	t.Helper()
	conds, _, err := unstructured.NestedSlice(o.Object, "status", "conditions")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range conds {
		m := c.(map[string]any)
		if m["type"] == typ {
			m["status"], m["reason"], found = status, reason, true
		}
	}
	if !found {
		t.Fatalf("no %s condition in %v", typ, conds)
	}
	if err := unstructured.SetNestedSlice(o.Object, conds, "status", "conditions"); err != nil {
		t.Fatal(err)
	}
}

func setTransition(t *testing.T, o *unstructured.Unstructured, v string) {
	t.Helper()
	if err := unstructured.SetNestedField(o.Object, v, "status", "modelStatus", "transitionStatus"); err != nil {
		t.Fatal(err)
	}
}
