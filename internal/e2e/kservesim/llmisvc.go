package kservesim

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/canarybot/canarybot/pkg/kustomize"
)

// LLMISVCGVR is KServe's LLMInferenceService resource, at v1alpha2, the
// storage version of KServe v0.19.0's CRD.
func LLMISVCGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: kustomize.GroupKServe, Version: "v1alpha2", Resource: "llminferenceservices"}
}

// Conditions KServe's LLMInferenceService controller (v0.19.0) manages:
// Ready, from its living condition set over WorkloadsReady and
// RouterReady.
var llmConditions = []string{"Ready", "RouterReady", "WorkloadsReady"}

// RunLLMISVC stands in for KServe's LLMInferenceService controller as Run
// does for InferenceServices: for every LLMInferenceService it sees, and
// after every change to one, it writes through the status subresource
// what the controller writes once the workload and router are up:
// observedGeneration and the conditions Ready, RouterReady and
// WorkloadsReady True. It simulates no failure, no pods and no routing;
// the members' traffic is read from their spec (internal/e2e/traffic).
func RunLLMISVC(ctx context.Context, dyn dynamic.Interface, opts Options) error {
	return run(ctx, dyn, opts, LLMISVCGVR(), (*controller).reconcileLLMISVC)
}

// LLMISVCReady reports whether obj's status is what RunLLMISVC writes for
// its current generation.
func LLMISVCReady(obj *unstructured.Unstructured) bool {
	gen, _, _ := unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
	if gen != obj.GetGeneration() {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	trues := map[string]bool{}
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["status"] == "True" {
			trues[fmt.Sprint(m["type"])] = true
		}
	}
	for _, t := range llmConditions {
		if !trues[t] {
			return false
		}
	}
	return true
}

func (c *controller) reconcileLLMISVC(ctx context.Context, key string) error {
	cached, err := c.cached(key)
	if cached == nil || err != nil {
		return err
	}
	if LLMISVCReady(cached) {
		return nil
	}
	obj := cached.DeepCopy()
	now := c.opts.Now().UTC().Format("2006-01-02T15:04:05Z")
	var conds []any
	for _, t := range llmConditions {
		conds = append(conds, map[string]any{"type": t, "status": "True", "lastTransitionTime": now})
	}
	obj.Object["status"] = map[string]any{"observedGeneration": obj.GetGeneration(), "conditions": conds}
	_, err = c.dyn.Resource(c.gvr).Namespace(obj.GetNamespace()).
		UpdateStatus(ctx, obj, metav1.UpdateOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update status of %s: %w", key, err)
	}
	c.opts.Logger.Info("kservesim: status written", "llmInferenceService", key, "generation", obj.GetGeneration())
	return nil
}
