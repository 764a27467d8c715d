package canary

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// A person's request, from `canarybot promote|pause|resume|abort`, is a
// file in Git, .canarybot/requests/<plan>.yaml, committed with trailers
// that say who asked. It names the rollout it is for (candidate, phase
// and step); the engine acts on it as it does on a ChatOps command, and
// the transition that carries it out records the request's id in the
// state (status.lastRequest). A request is pending while it still names
// the rollout where it is and its id is not the last one acted on, so it
// is carried out at most once, and a request for a rollout that has moved
// on is stale and does nothing. The whole exchange can be read back from
// Git.

// Request verbs.
const (
	RequestPromote = "promote"
	RequestPause   = "pause"
	RequestResume  = "resume"
	RequestAbort   = "abort"
)

// Trailers of a request commit.
const (
	TrailerRequest     = "Canarybot-Request"
	TrailerRequestedBy = "Canarybot-Requested-By"
)

// RequestDir holds the request files, one per plan.
const RequestDir = ".canarybot/requests"

// KindRequest is the kind of a request file.
const KindRequest = "RolloutRequest"

// MaxRequestBytes bounds a request file.
const MaxRequestBytes = 16 << 10

// ErrRequestNotApplicable marks a request that the rollout, where it is,
// cannot take: pausing a rollout that is not progressing, promoting a
// step that is not a pause.
var ErrRequestNotApplicable = errors.New("request does not apply")

// RequestPath is the repo path of a plan's request file.
func RequestPath(plan string) string { return path.Join(RequestDir, plan+".yaml") }

// RolloutRequest is a person's request for one rollout of one plan.
type RolloutRequest struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   ObjectMeta  `json:"metadata"`
	Spec       RequestSpec `json:"spec"`
}

// RequestSpec is the body of a RolloutRequest.
type RequestSpec struct {
	// ID identifies the request; status.lastRequest records it once done.
	ID     string    `json:"id"`
	Verb   string    `json:"verb"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
	// Candidate, Phase and Step are where the rollout was when the person
	// asked; the request applies only while it is still there.
	Candidate string `json:"candidate"`
	Phase     string `json:"phase"`
	Step      int    `json:"step"`
}

// NewRequest returns the request of verb by a person for the rollout of
// plan in st, or an error wrapping ErrRequestNotApplicable that says why
// the rollout cannot take it where it is.
func NewRequest(plan *CanaryPlan, st *RolloutState, verb, by, reason string, now time.Time) (*RolloutRequest, error) {
	s := st.Status
	if strings.TrimSpace(by) == "" {
		return nil, errors.New("a request needs who asked")
	}
	notNow := func(why string) error {
		return fmt.Errorf("%w: %s %s: %s", ErrRequestNotApplicable, verb, plan.Metadata.Name, why)
	}
	where := fmt.Sprintf("the rollout is %s at step %d", s.Phase, s.StepIndex)
	switch verb {
	case RequestAbort:
		if s.Phase != PhaseProgressing && s.Phase != PhasePaused {
			return nil, notNow("no rollout is in progress (" + s.Phase + ")")
		}
	case RequestPause:
		if s.Phase != PhaseProgressing {
			return nil, notNow(where + "; only a progressing rollout can be paused")
		}
	case RequestResume:
		if s.Phase != PhasePaused {
			return nil, notNow(where + "; only a paused rollout can be resumed")
		}
	case RequestPromote:
		if s.Phase != PhaseProgressing {
			return nil, notNow(where + "; only a progressing rollout can be promoted (resume a paused one)")
		}
		if s.StepIndex >= len(plan.Spec.Steps) || plan.Spec.Steps[s.StepIndex].Pause == nil {
			return nil, notNow(where + "; promote lets a rollout past a pause or approval step, and this is not one")
		}
	default:
		return nil, fmt.Errorf("unknown request %q: want promote, pause, resume or abort", verb)
	}
	return &RolloutRequest{
		APIVersion: APIVersion, Kind: KindRequest,
		Metadata: ObjectMeta{Name: plan.Metadata.Name},
		Spec: RequestSpec{
			ID: fmt.Sprintf("%s-%d", verb, now.UnixNano()), Verb: verb, By: by, Reason: reason, At: now.UTC(),
			Candidate: s.Candidate.URI, Phase: s.Phase, Step: s.StepIndex,
		},
	}, nil
}

// RequestChange is the commit of a request: its file, with trailers
// Canarybot-Plan, Canarybot-Request and Canarybot-Requested-By. It has no
// Canarybot-Action: it is not a transition.
func RequestChange(req *RolloutRequest) (Change, error) {
	b, err := yaml.Marshal(req)
	if err != nil {
		return Change{}, fmt.Errorf("encode request: %w", err)
	}
	b = append([]byte("# Written by `canarybot "+req.Spec.Verb+"`; the engine carries it out once.\n"), b...)
	plan, sp := req.Metadata.Name, req.Spec
	body := fmt.Sprintf("%s asked to %s the rollout of %s (%s at step %d).", sp.By, sp.Verb, plan, sp.Phase, sp.Step)
	if sp.Reason != "" {
		body += "\n\n" + sp.Reason
	}
	return Change{
		Files:   map[string][]byte{RequestPath(plan): b},
		Subject: fmt.Sprintf("canary(%s): %s requested by %s", plan, sp.Verb, sp.By),
		Body:    body,
		Trailers: []Trailer{
			{TrailerPlan, plan},
			{TrailerRequest, sp.Verb},
			{TrailerRequestedBy, sp.By},
		},
	}, nil
}

// ParseRequest decodes a request file strictly and checks it.
func ParseRequest(b []byte) (*RolloutRequest, error) {
	var r RolloutRequest
	if err := decodeStrict(b, &r); err != nil {
		return nil, err
	}
	var errs []error
	if r.APIVersion != APIVersion || r.Kind != KindRequest {
		errs = append(errs, fmt.Errorf("want apiVersion %s and kind %s, got %q and %q", APIVersion, KindRequest, r.APIVersion, r.Kind))
	}
	switch r.Spec.Verb {
	case RequestPromote, RequestPause, RequestResume, RequestAbort:
	default:
		errs = append(errs, fmt.Errorf("spec.verb: %q is not promote, pause, resume or abort", r.Spec.Verb))
	}
	if r.Spec.ID == "" {
		errs = append(errs, errors.New("spec.id is required"))
	}
	if r.Spec.By == "" {
		errs = append(errs, errors.New("spec.by is required"))
	}
	return &r, errors.Join(errs...)
}

// ReadRequest reads plan's request file in t; nil when there is none.
func ReadRequest(t Tree, plan string) (*RolloutRequest, error) {
	p := RequestPath(plan)
	b, err := ReadRepoFile(t.FS, p, MaxRequestBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	r, err := ParseRequest(b)
	if err != nil {
		return nil, Terminal(fmt.Errorf("%s: %w", p, err))
	}
	if r.Metadata.Name != plan {
		return nil, Terminal(fmt.Errorf("%s: metadata.name is %q, not the plan's name %q", p, r.Metadata.Name, plan))
	}
	return r, nil
}

// Pending reports whether r still asks something of the rollout in s.
func (r *RolloutRequest) Pending(s StateStatus) bool {
	return r != nil && r.Spec.ID != s.LastRequest && r.Spec.Candidate == s.Candidate.URI &&
		r.Spec.Phase == s.Phase && r.Spec.Step == s.StepIndex
}

// observe adds what r asks to obs, as a ChatOps command would.
func (r *RolloutRequest) observe(obs Observations) Observations {
	who := fmt.Sprintf("%s (%s)", r.Spec.By, orDefault(r.Spec.Reason, "no reason given"))
	switch r.Spec.Verb {
	case RequestAbort:
		obs.Abort = who
	case RequestPause:
		obs.Pause = who
	case RequestResume:
		obs.Resume = true
	case RequestPromote:
		obs.Promote = who
	}
	return obs
}

// carriedOut reports whether d is what r asked for.
func (r *RolloutRequest) carriedOut(d Decision) bool {
	switch r.Spec.Verb {
	case RequestAbort:
		return d.Action == ActRevert
	case RequestPause:
		return d.Action == ActHold
	default:
		return d.Action == ActAdvance || d.Action == ActPromote
	}
}
