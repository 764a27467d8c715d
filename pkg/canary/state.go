package canary

import "time"

// Phases of a rollout, as recorded in Git.
const (
	PhaseIdle        = "Idle"
	PhaseProgressing = "Progressing"
	PhasePaused      = "Paused"
	PhasePromoted    = "Promoted"
	PhaseReverted    = "Reverted"
)

// Artifact is a pinned model artifact.
type Artifact struct {
	// URI is immutable: oci://repo@sha256:…, models:/name/7, …; it is the
	// artifact's identity in the state, trailers and failed list.
	URI string `json:"uri"`
	// Version is the human label the artifact was found under, e.g. a tag.
	Version string `json:"version,omitempty"`
	// StorageURI, when set, is where the serving runtime loads the bytes
	// from because URI names a registry entry it cannot read (an MLflow
	// version's s3:// or gs:// location). It is what the overlay's
	// storageUri gets.
	StorageURI string `json:"storageURI,omitempty"`
}

// IsZero reports whether no artifact is set.
func (a Artifact) IsZero() bool { return a.URI == "" }

// Location is what the overlay's storageUri is set to: StorageURI when
// set, else URI.
func (a Artifact) Location() string {
	if a.StorageURI != "" {
		return a.StorageURI
	}
	return a.URI
}

// Same reports whether a and b name the same content: the same URI, or one
// is a registry entry stored where the other (say, a stable artifact read
// back from the overlay) points.
func (a Artifact) Same(b Artifact) bool {
	return a.URI != "" && (a.URI == b.URI || a.Location() == b.Location())
}

// RolloutState is the bot's state for one plan. It is stored in Git at
// .canarybot/state/<plan>.yaml, in the same commit as the overlay change.
type RolloutState struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   ObjectMeta  `json:"metadata"`
	Status     StateStatus `json:"status"`
}

// StateStatus is the body of a RolloutState.
type StateStatus struct {
	Phase  string   `json:"phase"`
	Reason string   `json:"reason,omitempty"`
	Stable Artifact `json:"stable"`
	// Candidate is the artifact in canary; empty when Idle.
	Candidate Artifact `json:"candidate,omitempty"`
	// StepsHash identifies the plan's steps the rollout started with.
	StepsHash string `json:"stepsHash,omitempty"`
	// Templates maps each gate made from a GateTemplate to the template
	// and a hash of its gate and arguments ("name@hash") the rollout
	// started with (TemplateHashes).
	Templates map[string]string `json:"templates,omitempty"`
	// RolloutStartedAt is when the candidate's rollout started.
	RolloutStartedAt time.Time `json:"rolloutStartedAt,omitempty"`
	StepIndex        int       `json:"stepIndex"`
	Weight           int       `json:"weight"`
	StepStartedAt    time.Time `json:"stepStartedAt,omitempty"`
	// Routes are the bot-owned header and mirror routes in force (gateway
	// mode); nil when none is.
	Routes *Routes `json:"routes,omitempty"`
	// Gates holds the last analysis results, as evidence.
	Gates []GateResult `json:"gates,omitempty"`
	// PromotedAt is when Stable was promoted (set by a promote; zero for
	// an artifact the plan started on). A downstream pipeline stage soaks
	// from it.
	PromotedAt time.Time `json:"promotedAt,omitzero"`
	// Failed lists artifacts that were reverted, newest last (at most
	// MaxFailed); they are never re-proposed.
	Failed  []Artifact     `json:"failed,omitempty"`
	History []HistoryEntry `json:"history,omitempty"`
	// LastRequest is the id of the last person's request (RolloutRequest)
	// a transition carried out.
	LastRequest string `json:"lastRequest,omitempty"`
}

// HistoryEntry is one transition, newest last.
type HistoryEntry struct {
	At       time.Time `json:"at"`
	Action   string    `json:"action"`
	Step     int       `json:"step"`
	Weight   int       `json:"weight"`
	Artifact string    `json:"artifact,omitempty"`
	Reason   string    `json:"reason,omitempty"`
}

// MaxHistory bounds the history kept in the state file.
const MaxHistory = 50

// MaxFailed bounds the reverted artifacts kept in status.failed, oldest
// dropped first, so that a plan that reverts for years still has a state
// file well inside MaxPlanBytes (500 artifacts are about 150 KiB). An
// artifact dropped from the list is no longer known to have failed: if a
// registry offers it again, it is rolled out and judged again.
const MaxFailed = 500

// IsFailed reports whether the artifact was reverted before.
func (s StateStatus) IsFailed(uri string) bool {
	for _, f := range s.Failed {
		if f.URI == uri {
			return true
		}
	}
	return false
}
