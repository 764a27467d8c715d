// Package kservesim stands in for the KServe controller in end-to-end
// tests, where a real kube-apiserver stores InferenceServices but nothing
// runs them. RunLLMISVC does the same, more simply, for
// LLMInferenceServices (see its doc).
//
// Run watches every InferenceService (serving.kserve.io/v1beta1) and writes
// its status subresource as KServe v0.15 would once the predictor is up:
// conditions with lastTransitionTime, status.components.predictor with its
// URL, modelStatus (transitionStatus UpToDate, activeModelState Loaded),
// observedGeneration and URLs. Argo CD's built-in health check for
// InferenceService then reports Healthy, as it would on a real cluster.
//
// # Revisions and canary traffic
//
// In Serverless mode (the default) KServe cuts a Knative revision for each
// new predictor template and, when spec.predictor.canaryTrafficPercent is
// set and a revision was rolled out before, splits traffic between the
// latest ready revision (latestRevision: true, the canary percent) and the
// last revision rolled out at 100% (tag "prev", the rest). kservesim does
// the same, with two simplifications: a revision is cut only when the
// predictor's storageUri changes, and every revision that does not fail
// is ready at once. The rolled-out bookkeeping (latestRolledoutRevision,
// previousRolledoutRevision) follows KServe's PropagateStatus, rollbacks
// included. The "latest" tag is set only when the InferenceService has
// serving.kserve.io/enable-tag-routing: "true", as in KServe.
//
// KServe does not record which model a revision serves. kservesim does,
// in status.annotations (the free-form map of Knative's duck Status):
// RevisionURIPrefix + revision name → storageUri, for every revision the
// status names. Traffic reads status.components.predictor.traffic joined
// with those annotations, so a reader can route each share to its model.
//
// In RawDeployment mode (annotation serving.kserve.io/deploymentMode) KServe
// keeps no revisions and ignores canaryTrafficPercent; kservesim writes
// conditions IngressReady, PredictorReady and Ready, the predictor's URL
// and no traffic, as KServe does.
//
// # Failing on purpose
//
// An InferenceService annotated FailAnnotation: "true", or whose storageUri
// Options.FailURI selects, gets a latest revision that fails to load:
// PredictorReady and Ready False with a reason, modelStatus
// transitionStatus BlockedByFailedLoad and lastFailureInfo set. Argo CD
// reports that as Degraded. In Serverless mode the last ready revision
// keeps serving, as in Knative.
package kservesim
