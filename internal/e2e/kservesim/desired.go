package kservesim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/canarybot/canarybot/pkg/kustomize"
)

// Annotations kservesim reads on an InferenceService and writes in its
// status.
const (
	// FailAnnotation set to "true" makes the latest revision fail to load.
	FailAnnotation = "canarybot.dev/e2e-fail"
	// RevisionURIPrefix + a revision name is the status.annotations key
	// holding the storageUri that revision serves.
	RevisionURIPrefix = "storageuri.kservesim.canarybot.dev/"

	annDeploymentMode = "serving.kserve.io/deploymentMode"
	annTagRouting     = "serving.kserve.io/enable-tag-routing"
	modeRaw           = "RawDeployment"
	modeServerless    = "Serverless"
	domain            = "example.com"
)

// errNotISVC is returned for an object of another kind.
var errNotISVC = errors.New("not a serving.kserve.io InferenceService")

// GVR is the InferenceService resource kservesim watches.
func GVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: kustomize.GroupKServe, Version: "v1beta1", Resource: "inferenceservices"}
}

// spec is what kservesim reads from an InferenceService.
type spec struct {
	name, namespace string
	generation      int64
	raw, tagRouting bool
	storageURI      string
	// invalid says why no storageUri was found, or "".
	invalid       string
	canaryPercent *int64
	failAnnotated bool
}

func readSpec(obj *unstructured.Unstructured) (spec, error) {
	s := spec{name: obj.GetName(), namespace: obj.GetNamespace(), generation: obj.GetGeneration()}
	if gvk := obj.GroupVersionKind(); gvk.Group != kustomize.GroupKServe || gvk.Kind != kustomize.KindISVC {
		return s, fmt.Errorf("read %s %s/%s: %w", gvk, s.namespace, s.name, errNotISVC)
	}
	ann := obj.GetAnnotations()
	s.raw = ann[annDeploymentMode] == modeRaw
	s.tagRouting = ann[annTagRouting] == "true"
	s.failAnnotated = ann[FailAnnotation] == "true"
	if pct, ok, err := unstructured.NestedInt64(obj.Object, "spec", "predictor", "canaryTrafficPercent"); err != nil {
		return s, fmt.Errorf("read canaryTrafficPercent of %s/%s: %w", s.namespace, s.name, err)
	} else if ok {
		s.canaryPercent = &pct
	}
	// kustomize.Parse knows where a predictor keeps its storageUri; reuse it
	// so that the bot and this stand-in agree.
	doc, err := yaml.Marshal(obj.Object)
	if err != nil {
		return s, fmt.Errorf("encode %s/%s: %w", s.namespace, s.name, err)
	}
	ex, err := kustomize.Parse(doc)
	if err != nil {
		return s, fmt.Errorf("read storageUri of %s/%s: %w", s.namespace, s.name, err)
	}
	isvc := ex.InferenceServices[s.name]
	s.storageURI, s.invalid = isvc.StorageURI, isvc.StorageURIError
	return s, nil
}

// fault is why the latest revision is not ready.
type fault struct {
	transition, reason, message string
}

func (s spec) fault(failURI func(string) bool) *fault {
	switch {
	case s.invalid != "":
		return &fault{transitionInvalidSpec, "InvalidPredictorSpec", s.invalid}
	case s.failAnnotated:
		return &fault{transitionBlocked, "ModelLoadFailed",
			fmt.Sprintf("model %s failed to load (annotation %s)", s.storageURI, FailAnnotation)}
	case failURI != nil && failURI(s.storageURI):
		return &fault{transitionBlocked, "ModelLoadFailed", fmt.Sprintf("model %s failed to load", s.storageURI)}
	}
	return nil
}

// DesiredStatus returns the status KServe would write for obj once its
// predictor has settled, given the status obj already carries (revision
// history, transition times). failURI, when not nil, marks storageUris
// whose model fails to load. The result is a fixed point: feeding it back
// as obj's status yields it again.
func DesiredStatus(obj *unstructured.Unstructured, now time.Time, failURI func(storageURI string) bool) (map[string]any, error) {
	st, err := desired(obj, now, failURI)
	if err != nil {
		return nil, err
	}
	return st.toMap()
}

func desired(obj *unstructured.Unstructured, now time.Time, failURI func(string) bool) (*status, error) {
	s, err := readSpec(obj)
	if err != nil {
		return nil, err
	}
	prev, err := readStatus(obj)
	if err != nil {
		return nil, err
	}
	f := s.fault(failURI)
	var st *status
	if s.raw {
		st = rawStatus(s, prev, f, now)
	} else {
		st = serverlessStatus(s, prev, f, now)
	}
	st.ObservedGeneration = s.generation
	st.ModelStatus = modelStatusFor(prev.ModelStatus, f, revisionOf(st), now)
	return st, nil
}

func revisionOf(st *status) string {
	return st.Components[predictor].LatestCreatedRevision
}

// rawStatus is KServe's RawDeployment status: no revisions, no traffic.
func rawStatus(s spec, prev *status, f *fault, now time.Time) *status {
	comp := componentStatus{URL: prev.Components[predictor].URL}
	st := &status{DeploymentMode: modeRaw, URL: prev.URL, Address: prev.Address}
	if f == nil {
		comp.URL = fmt.Sprintf("http://%s-predictor-%s.%s", s.name, s.namespace, domain)
		st.URL = fmt.Sprintf("http://%s-%s.%s", s.name, s.namespace, domain)
		st.Address = &addressable{URL: fmt.Sprintf("http://%s-predictor.%s.svc.cluster.local", s.name, s.namespace)}
	}
	st.Components = map[string]componentStatus{predictor: comp}
	cs := &conditionSet{prev: prev.Conditions, now: now}
	reason, msg := "", ""
	if f != nil {
		reason, msg = "MinimumReplicasUnavailable", f.message
	}
	markTop(cs, f == nil, reason, msg)
	st.Conditions = cs.sorted()
	return st
}

// markTop sets PredictorReady, and IngressReady and Ready from it, as
// KServe's ingress reconciler and living condition set do.
func markTop(cs *conditionSet, predictorOK bool, reason, message string) {
	const noIngress = "Predictor ingress not created"
	cs.mark(condPredictorReady, predictorOK, "", reason, message)
	cs.mark(condIngressReady, predictorOK, "", noIngress, "")
	cs.mark(condReady, predictorOK, "", noIngress, "")
}

// modelStatusFor is KServe's modelStatus for a loaded model, or for a
// latest revision that failed.
func modelStatusFor(prev *modelStatus, f *fault, revision string, now time.Time) *modelStatus {
	ms := &modelStatus{Copies: &modelCopies{}}
	active := statePending
	if prev != nil {
		ms.LastFailureInfo = prev.LastFailureInfo
		if prev.States != nil && prev.States.ActiveModelState != "" {
			active = prev.States.ActiveModelState
		}
	}
	if f == nil {
		ms.TransitionStatus = transitionUpToDate
		ms.States = &modelStates{ActiveModelState: stateLoaded, TargetModelState: stateLoaded}
		ms.Copies.TotalCopies = 1
		return ms
	}
	ms.TransitionStatus = f.transition
	ms.States = &modelStates{ActiveModelState: active, TargetModelState: stateFailedToLoad}
	ms.Copies.FailedCopies = 1
	info := &failureInfo{Reason: f.reason, Message: f.message, ModelRevisionName: revision,
		Time: now.UTC().Format(time.RFC3339)}
	if old := ms.LastFailureInfo; old != nil && old.Reason == info.Reason && old.Message == info.Message &&
		old.ModelRevisionName == info.ModelRevisionName && old.Time != "" {
		info.Time = old.Time
	}
	ms.LastFailureInfo = info
	return ms
}

// keepRevisionURIs returns ann without the revision storageUri entries of
// revisions not in keep.
func keepRevisionURIs(ann map[string]string, keep ...string) map[string]string {
	out := maps.Clone(ann)
	if out == nil {
		out = map[string]string{}
	}
	for k := range out {
		rev, ok := strings.CutPrefix(k, RevisionURIPrefix)
		if ok && !slices.Contains(keep, rev) {
			delete(out, k)
		}
	}
	return out
}
