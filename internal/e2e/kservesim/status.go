package kservesim

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// The parts of KServe v0.15's InferenceServiceStatus that kservesim writes,
// with the CRD's JSON names. Unknown fields are dropped on read.

type status struct {
	ObservedGeneration int64                      `json:"observedGeneration,omitempty"`
	Conditions         []condition                `json:"conditions,omitempty"`
	Annotations        map[string]string          `json:"annotations,omitempty"`
	URL                string                     `json:"url,omitempty"`
	Address            *addressable               `json:"address,omitempty"`
	Components         map[string]componentStatus `json:"components,omitempty"`
	ModelStatus        *modelStatus               `json:"modelStatus,omitempty"`
	DeploymentMode     string                     `json:"deploymentMode,omitempty"`
}

// condition is a Knative duck condition.
type condition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	Severity           string `json:"severity,omitempty"`
	LastTransitionTime string `json:"lastTransitionTime,omitempty"`
	Reason             string `json:"reason,omitempty"`
	Message            string `json:"message,omitempty"`
}

type addressable struct {
	URL string `json:"url,omitempty"`
}

type componentStatus struct {
	LatestReadyRevision       string          `json:"latestReadyRevision,omitempty"`
	LatestCreatedRevision     string          `json:"latestCreatedRevision,omitempty"`
	PreviousRolledoutRevision string          `json:"previousRolledoutRevision,omitempty"`
	LatestRolledoutRevision   string          `json:"latestRolledoutRevision,omitempty"`
	Traffic                   []trafficTarget `json:"traffic,omitempty"`
	URL                       string          `json:"url,omitempty"`
	Address                   *addressable    `json:"address,omitempty"`
}

// trafficTarget is a Knative serving TrafficTarget as KServe copies it.
type trafficTarget struct {
	Tag            string `json:"tag,omitempty"`
	RevisionName   string `json:"revisionName,omitempty"`
	LatestRevision *bool  `json:"latestRevision,omitempty"`
	Percent        *int64 `json:"percent,omitempty"`
	URL            string `json:"url,omitempty"`
}

type modelStatus struct {
	TransitionStatus string       `json:"transitionStatus"`
	States           *modelStates `json:"states,omitempty"`
	LastFailureInfo  *failureInfo `json:"lastFailureInfo,omitempty"`
	Copies           *modelCopies `json:"copies,omitempty"`
}

type modelStates struct {
	ActiveModelState string `json:"activeModelState"`
	TargetModelState string `json:"targetModelState,omitempty"`
}

type failureInfo struct {
	Reason            string `json:"reason,omitempty"`
	Message           string `json:"message,omitempty"`
	ModelRevisionName string `json:"modelRevisionName,omitempty"`
	Time              string `json:"time,omitempty"`
}

type modelCopies struct {
	FailedCopies int64 `json:"failedCopies"`
	TotalCopies  int64 `json:"totalCopies,omitempty"`
}

// KServe's condition types, transition statuses and model states.
const (
	condReady          = "Ready"
	condPredictorReady = "PredictorReady"
	condIngressReady   = "IngressReady"
	condRoutesReady    = "RoutesReady"
	condLatestDeploy   = "LatestDeploymentReady"
	condPredictorRoute = "PredictorRouteReady"
	condPredictorCfg   = "PredictorConfigurationReady"

	transitionUpToDate    = "UpToDate"
	transitionBlocked     = "BlockedByFailedLoad"
	transitionInvalidSpec = "InvalidSpec"

	stateLoaded       = "Loaded"
	statePending      = "Pending"
	stateFailedToLoad = "FailedToLoad"

	severityInfo = "Info"
	predictor    = "predictor"
)

// readStatus decodes obj's status; a missing status is the zero status.
func readStatus(obj *unstructured.Unstructured) (*status, error) {
	st := &status{}
	raw, ok := obj.Object["status"].(map[string]any)
	if !ok {
		return st, nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, st); err != nil {
		return nil, fmt.Errorf("decode status of %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return st, nil
}

// toMap encodes st as an unstructured status.
func (st *status) toMap() (map[string]any, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(st)
	if err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	return m, nil
}

// conditionSet builds a status's conditions the way Knative's condition
// manager does: a condition keeps its lastTransitionTime unless its status,
// reason, message or severity changes, and conditions are sorted by type.
type conditionSet struct {
	prev []condition
	now  time.Time
	out  []condition
}

func (cs *conditionSet) set(c condition) {
	c.LastTransitionTime = cs.now.UTC().Format(time.RFC3339)
	for _, p := range cs.prev {
		if p.Type == c.Type && p.Status == c.Status && p.Reason == c.Reason &&
			p.Message == c.Message && p.Severity == c.Severity && p.LastTransitionTime != "" {
			c.LastTransitionTime = p.LastTransitionTime
		}
	}
	cs.out = append(cs.out, c)
}

// mark sets a True condition when ok, else a False one with reason and
// message.
func (cs *conditionSet) mark(typ string, ok bool, severity, reason, message string) {
	if ok {
		cs.set(condition{Type: typ, Status: "True", Severity: severity})
		return
	}
	cs.set(condition{Type: typ, Status: "False", Severity: severity, Reason: reason, Message: message})
}

func (cs *conditionSet) sorted() []condition {
	slices.SortFunc(cs.out, func(a, b condition) int {
		switch {
		case a.Type < b.Type:
			return -1
		case a.Type > b.Type:
			return 1
		}
		return 0
	})
	return cs.out
}
