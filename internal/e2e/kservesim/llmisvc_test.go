package kservesim_test

import (
	"context"
	"os"
	"testing"
	"time"

	argoappv1 "github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	argolua "github.com/argoproj/argo-cd/v2/util/lua"
	"github.com/argoproj/gitops-engine/pkg/health"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"sigs.k8s.io/yaml"

	"github.com/canarybot/canarybot/internal/e2e/kservesim"
)

// healthConfig is the argocd-cm patch the repository ships for
// LLMInferenceService.
const healthConfig = "../../../manifests/argocd/llminferenceservice-health.yaml"

// llmHealth runs the shipped health script on obj through Argo CD's own
// Lua VM, as the application controller runs a resource customization.
func llmHealth(t *testing.T, obj *unstructured.Unstructured) *health.HealthStatus {
	t.Helper()
	b, err := os.ReadFile(healthConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cm struct{ Data map[string]string }
	if err := yaml.UnmarshalStrict(b, &cm); err != nil {
		t.Fatal(err)
	}
	script := cm.Data["resource.customizations.health.serving.kserve.io_LLMInferenceService"]
	if script == "" {
		t.Fatalf("%s has no LLMInferenceService health script: %v", healthConfig, cm.Data)
	}
	overrides := map[string]argoappv1.ResourceOverride{"serving.kserve.io/LLMInferenceService": {HealthLua: script}}
	hs, err := argolua.ResourceHealthOverrides(overrides).GetResourceHealth(obj)
	if err != nil || hs == nil {
		t.Fatalf("health check: %v, %v", hs, err)
	}
	return hs
}

func llmObject(gen int64) *unstructured.Unstructured {
	o := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
		"metadata": map[string]any{"name": "qwen-llm-canary", "namespace": "models", "generation": gen},
		"spec":     map[string]any{"model": map[string]any{"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}},
	}}
	return o
}

// The stand-in writes the status KServe's controller writes once up, and
// the shipped health check calls it Healthy; a newer generation is
// reconciled again.
func TestRunLLMISVCWritesReadyStatus(t *testing.T) {
	gvr := kservesim.LLMISVCGVR()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{gvr: "LLMInferenceServiceList"}, llmObject(1))
	if hs := llmHealth(t, llmObject(1)); hs.Status != health.HealthStatusProgressing {
		t.Errorf("health without status = %s, want Progressing", hs.Status)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- kservesim.RunLLMISVC(ctx, dyn, kservesim.Options{Namespace: "models", Now: func() time.Time { return t0 }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunLLMISVC: %v", err)
		}
	}()
	var obj *unstructured.Unstructured
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		obj, err = dyn.Resource(gvr).Namespace("models").Get(ctx, "qwen-llm-canary", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if kservesim.LLMISVCReady(obj) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready status written: %v", obj.Object["status"])
		}
	}
	if hs := llmHealth(t, obj); hs.Status != health.HealthStatusHealthy {
		t.Errorf("health of the stand-in's status = %s %q, want Healthy", hs.Status, hs.Message)
	}
	next := obj.DeepCopy()
	next.SetGeneration(2)
	if hs := llmHealth(t, next); hs.Status != health.HealthStatusProgressing {
		t.Errorf("health before generation 2 is observed = %s, want Progressing", hs.Status)
	}
}

// The script tells a pod rollout in progress from a failure.
func TestLLMISVCHealthOfControllerStatuses(t *testing.T) {
	tests := []struct {
		reason, status string
		want           health.HealthStatusCode
	}{
		{"MinimumReplicasUnavailable", "False", health.HealthStatusProgressing},
		{"", "Unknown", health.HealthStatusProgressing},
		{"ProgressDeadlineExceeded", "False", health.HealthStatusDegraded},
		{"ReconcileSingleNodeWorkloadError", "False", health.HealthStatusDegraded},
		{"Stopped", "False", health.HealthStatusSuspended},
		{"", "True", health.HealthStatusHealthy},
	}
	for _, tc := range tests {
		t.Run(tc.status+" "+tc.reason, func(t *testing.T) {
			o := llmObject(3)
			o.Object["status"] = map[string]any{"observedGeneration": int64(3), "conditions": []any{
				map[string]any{"type": "WorkloadsReady", "status": tc.status, "reason": tc.reason},
				map[string]any{"type": "Ready", "status": tc.status, "reason": tc.reason, "message": "from the Deployment"},
			}}
			if hs := llmHealth(t, o); hs.Status != tc.want {
				t.Errorf("health = %s %q, want %s", hs.Status, hs.Message, tc.want)
			}
		})
	}
}
