package kservesim

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ErrNoTraffic means the InferenceService's status routes no traffic yet:
// no controller has reconciled it, no revision is ready, or it runs in
// RawDeployment mode, where KServe reports no traffic.
var ErrNoTraffic = errors.New("status routes no traffic")

// Target is one entry of status.components.predictor.traffic, with the
// storageUri its revision serves.
type Target struct {
	RevisionName string
	// Tag is "prev" for the last rolled-out revision's share, "latest" or
	// "" for the latest ready revision's.
	Tag string
	// LatestRevision marks the share that follows the latest ready revision.
	LatestRevision bool
	Percent        int
	StorageURI     string
}

// Traffic reads the predictor's traffic split from obj's status, as
// written by kservesim. It fails with ErrNoTraffic when there is none, and
// when a revision's storageUri was not recorded.
func Traffic(obj *unstructured.Unstructured) ([]Target, error) {
	st, err := readStatus(obj)
	if err != nil {
		return nil, err
	}
	comp := st.Components[predictor]
	if len(comp.Traffic) == 0 {
		return nil, fmt.Errorf("read traffic of %s/%s: %w", obj.GetNamespace(), obj.GetName(), ErrNoTraffic)
	}
	out := make([]Target, 0, len(comp.Traffic))
	for i, t := range comp.Traffic {
		uri, ok := st.Annotations[RevisionURIPrefix+t.RevisionName]
		if !ok || t.RevisionName == "" {
			return nil, fmt.Errorf("read traffic of %s/%s: entry %d: no storageUri recorded for revision %q",
				obj.GetNamespace(), obj.GetName(), i, t.RevisionName)
		}
		if t.Percent == nil || *t.Percent < 0 || *t.Percent > 100 {
			return nil, fmt.Errorf("read traffic of %s/%s: entry %d: percent missing or outside 0..100",
				obj.GetNamespace(), obj.GetName(), i)
		}
		out = append(out, Target{
			RevisionName:   t.RevisionName,
			Tag:            t.Tag,
			LatestRevision: t.LatestRevision != nil && *t.LatestRevision,
			Percent:        int(*t.Percent),
			StorageURI:     uri,
		})
	}
	return out, nil
}
