// Package canary is canarybot's core: the CanaryPlan and RolloutState types,
// the pure Decide function, and the Engine that carries decisions out
// through narrow ports. It imports no SDK; adapters live in sibling packages.
package canary

import (
	"time"
)

// APIVersion and the kinds canarybot reads and writes.
const (
	APIVersion     = "canarybot.dev/v1alpha1"
	KindCanaryPlan = "CanaryPlan"
	KindState      = "RolloutState"
)

// Traffic modes.
const (
	ModeKServe  = "kserve"
	ModeGateway = "gateway"
	ModeLLMISVC = "llmisvc"
)

// Rollback actions.
const (
	ActionRevert = "revert"
	ActionHold   = "hold"
)

// Concurrency policies for a new artifact arriving mid-rollout.
const (
	ConcurrencyQueue     = "queue"
	ConcurrencySupersede = "supersede"
)

// Gate types.
const (
	GateThreshold = "threshold"
	GateJudge     = "judge"
	GateDrift     = "drift"
	GateGauge     = "gauge"
)

// ObjectMeta is the subset of Kubernetes object metadata a plan carries.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// CanaryPlan is one model's rollout plan. It lives as YAML in the GitOps repo.
type CanaryPlan struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       PlanSpec   `json:"spec"`
}

// PlanSpec is the body of a CanaryPlan.
type PlanSpec struct {
	Model    ModelSpec      `json:"model"`
	Traffic  TrafficSpec    `json:"traffic"`
	Overlay  string         `json:"overlay"`
	ArgoCD   ArgoCDSpec     `json:"argocd"`
	Steps    []Step         `json:"steps"`
	Gates    []GateSpec     `json:"gates,omitempty"`
	Rollback RollbackPolicy `json:"rollback,omitempty"`
	// Signals is the default metrics source of judge, drift and gauge gates.
	Signals *SignalsSpec `json:"signals,omitempty"`
	// BackgroundAnalysis gates are evaluated on every reconcile while a
	// rollout progresses, whatever the step; a failure reverts or holds.
	BackgroundAnalysis *AnalysisStep `json:"backgroundAnalysis,omitempty"`
	// Concurrency says what a new artifact does while another is in canary:
	// queue (default) waits for the rollout to end; supersede restarts with it.
	Concurrency string `json:"concurrency,omitempty"`
	// Notifications, when set (even to an empty list), replaces the
	// repository's default channels (.canarybot/config.yaml).
	Notifications []NotificationChannel `json:"notifications,omitempty"`
}

// ModelSpec names the model and where its pinned artifacts come from.
type ModelSpec struct {
	Name   string     `json:"name"`
	Source SourceSpec `json:"source"`
}

// SourceSpec is exactly one registry kind.
type SourceSpec struct {
	OCI    *OCISource    `json:"oci,omitempty"`
	MLflow *MLflowSource `json:"mlflow,omitempty"`
	Static *StaticSource `json:"static,omitempty"`
	// FromPlan makes the plan a stage of a promotion pipeline: it proposes
	// exactly the artifact another plan (the upstream stage) promoted,
	// once held promoted for the soak (see pipeline.go).
	FromPlan *FromPlanSource `json:"fromPlan,omitempty"`
}

// OCI tag policies: which tag of a repository is the newest version.
const (
	// OCIPolicySemver picks the highest semantic version within Semver.
	OCIPolicySemver = "semver"
	// OCIPolicyRegex picks, among tags matching TagRegex, the one whose
	// first capture group (or whole tag) is highest: as numbers when both
	// are decimal, else byte-wise.
	OCIPolicyRegex = "regex"
	// OCIPolicyLatest picks the tag whose manifest was created last, by
	// CreatedAnnotation, else by its config's "created" field.
	OCIPolicyLatest = "latest"
)

// OCISource watches an OCI repository. Tags only select versions; every
// proposed artifact is pinned by digest.
type OCISource struct {
	// Repository is host/path, without a scheme, tag or digest.
	Repository string `json:"repository"`
	// Policy is semver (default), regex or latest; see OCIPolicySemver.
	Policy string `json:"policy,omitempty"`
	// Semver is a version constraint over tags, e.g. ">=1.0.0" (policy
	// semver only).
	Semver string `json:"semver,omitempty"`
	// TagRegex is an RE2 pattern a tag must match. Policy regex requires
	// it; with semver and latest it narrows the tags considered.
	TagRegex string `json:"tagRegex,omitempty"`
	// CreatedAnnotation is the manifest annotation holding an RFC 3339
	// creation time (policy latest); org.opencontainers.image.created when
	// empty.
	CreatedAnnotation string `json:"createdAnnotation,omitempty"`
	// Verify, when set, proposes only artifacts with a valid cosign
	// signature.
	Verify *OCIVerify `json:"verify,omitempty"`
}

// OCIVerify is the provenance an OCI artifact must have to be proposed: a
// cosign signature (a Sigstore bundle attached to the artifact's manifest
// as an OCI referrer, as cosign v3 writes it) made with PublicKey, or,
// keyless, with a certificate for Identity (or IdentityRegexp) issued by
// Issuer and chained to the trusted root.
type OCIVerify struct {
	// PublicKey is a PEM public key (cosign.pub). Set it, or Issuer.
	PublicKey string `json:"publicKey,omitempty"`
	// Identity is the certificate identity wanted, exactly: for GitHub
	// Actions, the workflow, e.g.
	// https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main.
	Identity string `json:"identity,omitempty"`
	// IdentityRegexp is an RE2 pattern the identity must match, instead of
	// Identity.
	IdentityRegexp string `json:"identityRegexp,omitempty"`
	// Issuer is the OIDC issuer the identity comes from, exactly, e.g.
	// https://token.actions.githubusercontent.com.
	Issuer string `json:"issuer,omitempty"`
	// TrustedRoot is a Sigstore trusted_root.json, inline: the Fulcio CAs,
	// Rekor and CT log keys to trust. Nothing is fetched over the network.
	TrustedRoot string `json:"trustedRoot,omitempty"`
	// TrustedRootFile is the path of a trusted_root.json on the bot's
	// filesystem (a mounted ConfigMap, say), instead of TrustedRoot.
	TrustedRootFile string `json:"trustedRootFile,omitempty"`
	// RequireTlog (default true) requires a Rekor entry whose signed
	// timestamp dates the signature. With false, the key or certificate
	// is checked at the current time: fit for a long-lived key or a
	// private CA, not for Fulcio's ten-minute certificates.
	RequireTlog *bool `json:"requireTlog,omitempty"`
	// RequireSCT (keyless only; default true) requires the certificate to
	// carry a signed certificate timestamp from a trusted CT log.
	RequireSCT *bool `json:"requireSCT,omitempty"`
}

// Keyless reports whether v verifies a certificate identity rather than a
// public key.
func (v *OCIVerify) Keyless() bool { return v.PublicKey == "" }

// TlogRequired reports whether a transparency log entry is required.
func (v *OCIVerify) TlogRequired() bool { return v.RequireTlog == nil || *v.RequireTlog }

// SCTRequired reports whether a keyless certificate must carry an SCT.
func (v *OCIVerify) SCTRequired() bool {
	return v.Keyless() && (v.RequireSCT == nil || *v.RequireSCT)
}

// MLflowSource watches an MLflow Model Registry. Each proposed artifact is
// pinned by version number (models:/<model>/<version>); its storage
// location, which the serving runtime loads, is resolved with MLflow's
// get-download-uri and recorded as Artifact.StorageURI.
type MLflowSource struct {
	// TrackingURI is the MLflow server's base URL, http(s)://host[/prefix].
	TrackingURI string `json:"trackingURI"`
	// Model is the registered model's name.
	Model string `json:"model"`
	// Alias, when set, proposes the version the alias (e.g. challenger)
	// points at; otherwise the highest READY version is proposed.
	Alias string `json:"alias,omitempty"`
	// RequireTags: a version qualifies only when it carries each tag with
	// exactly that value, e.g. validation_status: approved.
	RequireTags map[string]string `json:"requireTags,omitempty"`
}

// StaticSource proposes exactly one artifact, which must be pinned (an OCI
// digest, an S3 versionId or a GCS generation).
type StaticSource struct {
	URI string `json:"uri"`
	// Version labels the artifact in commits and status; optional.
	Version string `json:"version,omitempty"`
}

// TrafficSpec chooses how traffic is split between stable and canary.
type TrafficSpec struct {
	Mode    string          `json:"mode"`
	KServe  *KServeTraffic  `json:"kserve,omitempty"`
	Gateway *GatewayTraffic `json:"gateway,omitempty"`
	LLMISVC *LLMISVCTraffic `json:"llmisvc,omitempty"`
}

// KServeTraffic splits traffic with an InferenceService's canaryTrafficPercent.
type KServeTraffic struct {
	InferenceService string `json:"inferenceService"`
}

// GatewayTraffic splits traffic with HTTPRoute backendRefs weights between a
// stable and a canary backend, each served by its own InferenceService.
type GatewayTraffic struct {
	HTTPRoute string  `json:"httpRoute"`
	Stable    Backend `json:"stable"`
	Canary    Backend `json:"canary"`
}

// Backend is one side of a gateway split.
type Backend struct {
	// InferenceService whose storageUri the bot sets.
	InferenceService string `json:"inferenceService"`
	// Service is the backendRefs name in the HTTPRoute.
	Service string `json:"service"`
}

// ArgoCDSpec names the Application that deploys the overlay.
type ArgoCDSpec struct {
	Application string    `json:"application"`
	SyncTimeout *Duration `json:"syncTimeout,omitempty"`
}

// Step is exactly one of setWeight, pause, analysis, setHeaderRoute or
// setMirrorRoute. The two route steps are for traffic mode gateway only
// (see routes.go).
type Step struct {
	SetWeight      *int             `json:"setWeight,omitempty"`
	Pause          *PauseStep       `json:"pause,omitempty"`
	Analysis       *AnalysisStep    `json:"analysis,omitempty"`
	SetHeaderRoute *HeaderRoute     `json:"setHeaderRoute,omitempty"`
	SetMirrorRoute *MirrorRouteStep `json:"setMirrorRoute,omitempty"`
}

// PauseStep waits for a duration, or until a reviewer approves.
type PauseStep struct {
	Duration      *Duration `json:"duration,omitempty"`
	UntilApproved bool      `json:"untilApproved,omitempty"`
}

// AnalysisStep evaluates named gates until they succeed or fail.
type AnalysisStep struct {
	Gates []string `json:"gates"`
}

// GateSpec defines one named gate.
type GateSpec struct {
	Name      string         `json:"name"`
	Type      string         `json:"type"`
	Threshold *ThresholdGate `json:"threshold,omitempty"`
	Judge     *JudgeGate     `json:"judge,omitempty"`
	Drift     *DriftGate     `json:"drift,omitempty"`
	Gauge     *GaugeGate     `json:"gauge,omitempty"`
	// GoldenSet scores a versioned request set on both sides (plan_quality.go).
	GoldenSet *GoldenSetGate `json:"goldenSet,omitempty"`
	// Signals says where judge, drift and gauge gates read stable and
	// canary metrics; it defaults to spec.signals.
	Signals *SignalsSpec `json:"signals,omitempty"`
	// TemplateRef uses a GateTemplate of the repository instead of an
	// inline definition; the plan is resolved when it is read.
	TemplateRef *GateTemplateRef `json:"templateRef,omitempty"`
	// From is set on a gate resolved from a template; never serialized.
	From *TemplateUse `json:"-"`
}

// ThresholdGate is a PromQL query measured every interval with Argo
// Rollouts semantics.
type ThresholdGate struct {
	// Query is PromQL; Signal measures the gate's signals instead, which
	// also works in the simulator. Exactly one is set.
	Query                 string      `json:"query,omitempty"`
	Signal                *SignalStat `json:"signal,omitempty"`
	SuccessCondition      string      `json:"successCondition,omitempty"`
	FailureCondition      string      `json:"failureCondition,omitempty"`
	Interval              *Duration   `json:"interval,omitempty"`
	InitialDelay          *Duration   `json:"initialDelay,omitempty"`
	Count                 *int        `json:"count,omitempty"`
	FailureLimit          *int        `json:"failureLimit,omitempty"`
	InconclusiveLimit     *int        `json:"inconclusiveLimit,omitempty"`
	ConsecutiveErrorLimit *int        `json:"consecutiveErrorLimit,omitempty"`
}

// RollbackPolicy maps each bad outcome to revert or hold.
type RollbackPolicy struct {
	OnFailure      string `json:"onFailure,omitempty"`
	OnInconclusive string `json:"onInconclusive,omitempty"`
	OnError        string `json:"onError,omitempty"`
	OnSyncFailure  string `json:"onSyncFailure,omitempty"`
}

// Duration is a time.Duration that reads and writes as "90s" in YAML.
type Duration struct{ time.Duration }
