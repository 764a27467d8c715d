package kservesim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// serverlessStatus is KServe's Serverless status: Knative revisions, the
// route's traffic split and the rolled-out bookkeeping.
func serverlessStatus(s spec, prev *status, f *fault, now time.Time) *status {
	comp := prev.Components[predictor]
	ann := keepRevisionURIs(prev.Annotations, comp.LatestCreatedRevision, comp.LatestReadyRevision,
		comp.LatestRolledoutRevision, comp.PreviousRolledoutRevision)
	// A new storageUri is a new revision template. An invalid spec never
	// reaches Knative, so it cuts no revision.
	if s.invalid == "" && (comp.LatestCreatedRevision == "" || ann[RevisionURIPrefix+comp.LatestCreatedRevision] != s.storageURI) {
		comp.LatestCreatedRevision = nextRevision(s.name, comp.LatestCreatedRevision)
		ann[RevisionURIPrefix+comp.LatestCreatedRevision] = s.storageURI
	}
	if f == nil {
		comp.LatestReadyRevision = comp.LatestCreatedRevision
	}
	comp.Traffic = nil
	if comp.LatestReadyRevision != "" {
		// KServe needs a second reconcile when the rolled-out revision
		// moves, since the route is built from the previous bookkeeping;
		// iterate to where it settles.
		for range 3 {
			comp.Traffic = routeTraffic(s, comp)
			before := comp
			rollout(&comp)
			if comp.LatestRolledoutRevision == before.LatestRolledoutRevision &&
				comp.PreviousRolledoutRevision == before.PreviousRolledoutRevision {
				break
			}
		}
		comp.URL = fmt.Sprintf("http://%s-predictor.%s.%s", s.name, s.namespace, domain)
		comp.Address = &addressable{URL: fmt.Sprintf("http://%s-predictor.%s.svc.cluster.local", s.name, s.namespace)}
	}
	st := &status{
		DeploymentMode: modeServerless,
		URL:            prev.URL,
		Address:        prev.Address,
		Components:     map[string]componentStatus{predictor: comp},
		Annotations: keepRevisionURIs(ann, comp.LatestCreatedRevision, comp.LatestReadyRevision,
			comp.LatestRolledoutRevision, comp.PreviousRolledoutRevision),
	}
	if comp.LatestReadyRevision != "" {
		st.URL = fmt.Sprintf("http://%s.%s.%s", s.name, s.namespace, domain)
		st.Address = &addressable{URL: fmt.Sprintf("http://%s.%s.svc.cluster.local", s.name, s.namespace)}
	}
	st.Conditions = serverlessConditions(s, prev, comp, f, now)
	return st
}

// nextRevision names the revision after last, Knative style:
// <isvc>-predictor-00001, -00002, …
func nextRevision(isvc, last string) string {
	n := 0
	if i := strings.LastIndexByte(last, '-'); i >= 0 {
		n, _ = strconv.Atoi(last[i+1:])
	}
	return fmt.Sprintf("%s-predictor-%05d", isvc, n+1)
}

// routeTraffic is the traffic KServe asks Knative for, as Knative reports
// it: with canaryTrafficPercent set and a revision rolled out before, the
// latest ready revision gets the percent and the last rolled-out one
// (tag "prev") the rest; otherwise the latest ready revision gets all.
func routeTraffic(s spec, comp componentStatus) []trafficTarget {
	latest := trafficTarget{RevisionName: comp.LatestReadyRevision, LatestRevision: ptr(true), Percent: ptr[int64](100)}
	if s.tagRouting {
		latest.Tag = "latest"
		latest.URL = tagURL(s, latest.Tag)
	}
	if s.canaryPercent == nil || comp.LatestRolledoutRevision == "" {
		return []trafficTarget{latest}
	}
	latest.Percent = ptr(*s.canaryPercent)
	out := []trafficTarget{latest}
	if *s.canaryPercent < 100 {
		out = append(out, trafficTarget{
			Tag:            "prev",
			RevisionName:   comp.LatestRolledoutRevision,
			LatestRevision: ptr(false),
			Percent:        ptr(100 - *s.canaryPercent),
			URL:            tagURL(s, "prev"),
		})
	}
	return out
}

func tagURL(s spec, tag string) string {
	return fmt.Sprintf("http://%s-%s-predictor.%s.%s", tag, s.name, s.namespace, domain)
}

// rollout tracks the last two revisions rolled out with 100% of traffic,
// as KServe's PropagateStatus does, including its rollback rule: when the
// rolled-out revision is split with itself, the previous one is rolled out
// again.
func rollout(comp *componentStatus) {
	byRevision := map[string]int64{}
	for _, t := range comp.Traffic {
		if t.Percent != nil {
			byRevision[t.RevisionName] += *t.Percent
		}
	}
	for _, t := range comp.Traffic {
		if t.RevisionName != comp.LatestReadyRevision || t.LatestRevision == nil || !*t.LatestRevision || t.Percent == nil {
			continue
		}
		switch {
		case comp.LatestRolledoutRevision != comp.LatestReadyRevision:
			if *t.Percent == 100 {
				comp.PreviousRolledoutRevision = comp.LatestRolledoutRevision
				comp.LatestRolledoutRevision = comp.LatestReadyRevision
			}
		case comp.LatestReadyRevision == comp.LatestCreatedRevision && *t.Percent < 100 &&
			byRevision[t.RevisionName] == 100 && comp.PreviousRolledoutRevision != "":
			comp.LatestRolledoutRevision = comp.PreviousRolledoutRevision
		}
	}
}

// serverlessConditions are the conditions KServe propagates from the
// Knative Service: configuration (latest revision) and route readiness per
// component and across components, then PredictorReady, IngressReady and
// Ready.
func serverlessConditions(s spec, prev *status, comp componentStatus, f *fault, now time.Time) []condition {
	cs := &conditionSet{prev: prev.Conditions, now: now}
	cfgOK, routeOK := f == nil, comp.LatestReadyRevision != ""
	var cfgReason, cfgMsg string
	if f != nil {
		cfgReason = "RevisionFailed"
		cfgMsg = fmt.Sprintf("Revision %q failed with message: %s.", comp.LatestCreatedRevision, f.message)
		if f.transition == transitionInvalidSpec {
			cfgReason, cfgMsg = "InvalidSpec", f.message
		}
	}
	routeReason := "RevisionMissing"
	routeMsg := fmt.Sprintf("Configuration %q does not have any ready Revision.", s.name+"-predictor")
	cs.mark(condPredictorCfg, cfgOK, severityInfo, cfgReason, cfgMsg)
	cs.mark(condLatestDeploy, cfgOK, severityInfo, condPredictorCfg+" not ready", "")
	cs.mark(condPredictorRoute, routeOK, severityInfo, routeReason, routeMsg)
	cs.mark(condRoutesReady, routeOK, severityInfo, condPredictorRoute+" not ready", "")
	reason, msg := cfgReason, cfgMsg
	if cfgOK {
		reason, msg = routeReason, routeMsg
	}
	markTop(cs, cfgOK && routeOK, reason, msg)
	return cs.sorted()
}

func ptr[T any](v T) *T { return &v }
