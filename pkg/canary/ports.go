package canary

import (
	"context"
	"io/fs"
	"time"
)

// The ports below are the only way the Engine touches the world. Each is
// implemented by a thin adapter over one SDK, and faked in tests with Fn
// fields.

// Tree is one revision of the GitOps repo, read-only.
type Tree struct {
	// Head is the commit.
	Head string
	// FS holds the revision's files by repo-relative slash path. It is
	// immutable, safe for concurrent use, and refuses to follow symbolic
	// links. Read it with ReadRepoFile, which bounds every read.
	FS fs.FS
}

// Trailer is one git trailer line ("Key: Value") of a commit message.
type Trailer struct {
	Key   string
	Value string
}

// Trailer keys canarybot writes on every transition commit.
const (
	TrailerPlan     = "Canarybot-Plan"
	TrailerStep     = "Canarybot-Step"
	TrailerArtifact = "Canarybot-Artifact"
	TrailerAction   = "Canarybot-Action"
)

// Change is what one transition writes to the repo.
type Change struct {
	// Files maps repo-relative slash paths to their whole new content.
	Files    map[string][]byte
	Subject  string
	Body     string
	Trailers []Trailer
	// Evidence is what a reviewer needs to judge the change; adapters that
	// publish changes for review (pull requests) render it.
	Evidence *Evidence
}

// Evidence explains one transition: the plan, the rollout before and after
// it, and the decision with its gate results.
type Evidence struct {
	Plan          *CanaryPlan
	Before, After *RolloutState
	Decision      Decision
}

// Gates returns the gate results behind the transition: the decision's,
// or else the last ones recorded before it.
func (e *Evidence) Gates() []GateResult {
	if len(e.Decision.Gates) > 0 {
		return e.Decision.Gates
	}
	return e.Before.Status.Gates
}

// CommitResult says what Transact did.
type CommitResult struct {
	SHA string
	// NoOp is true when the change matched the tree byte for byte.
	NoOp bool
	// Attempts counts push attempts, including non-fast-forward retries.
	Attempts int
	// Pending, when set, says why the change is not committed yet although
	// it is ready: a pull request waiting for a reviewer, a merge blocked by
	// required checks. It is waiting, not failing. RetryAfter suggests when
	// to look again; zero leaves it to the engine's poll.
	Pending    string
	RetryAfter time.Duration
}

// TransactFunc computes a change on a fresh checkout. It may be called
// again on a newer head after a non-fast-forward push. A nil change is a no-op.
type TransactFunc func(ctx context.Context, t Tree) (*Change, error)

// Repo is the GitOps repository.
type Repo interface {
	// Transact checks out the branch head, calls fn, commits and pushes its
	// change, and retries on a newer head when the push is not a fast-forward.
	// It never force-pushes.
	Transact(ctx context.Context, fn TransactFunc) (CommitResult, error)
	// Checkout fetches and checks out the branch head, read-only use.
	Checkout(ctx context.Context) (Tree, error)
	// LastCommit returns the newest commit at or before head that touched
	// any of paths, or "" when none did.
	LastCommit(ctx context.Context, head string, paths ...string) (string, error)
	// Contains reports whether ancestor is reachable from rev (or equal).
	Contains(ctx context.Context, rev, ancestor string) (bool, error)
	// CommitTime is when commit sha landed: its committer time.
	CommitTime(ctx context.Context, sha string) (time.Time, error)
}

// Desired is the traffic split an overlay must express.
type Desired struct {
	// Stable is the artifact serving the remaining traffic.
	Stable string
	// Canary is the artifact in canary, or "" when none is.
	Canary string
	// CanaryWeight is the canary's share of traffic, 0..100.
	CanaryWeight int
	// Routes are the bot-owned header and mirror routes to the canary
	// (gateway mode only); nil when none is in force.
	Routes *Routes
}

// Renderer writes the bot-owned overlay files.
type Renderer interface {
	// Render computes the bot-owned files that make the plan's overlay in t
	// express d, verifies them with a build, and returns them by repo path.
	// It never returns a path a human owns.
	Render(ctx context.Context, t Tree, plan *CanaryPlan, d Desired) (map[string][]byte, error)
}

// SyncObservation is what the deployer reports for a commit.
type SyncObservation struct {
	// Revision is the revision the deployer last synced.
	Revision string
	// Ready: the target commit (or a descendant) is synced and healthy, with
	// health assessed after that sync finished.
	Ready bool
	// Failed: the sync failed or the app is degraded or missing.
	Failed bool
	Reason string
	// SyncedAt, when Ready, is when the deployer finished the sync that
	// made it so (Argo CD's operationState.finishedAt); zero when unknown.
	SyncedAt time.Time
}

// SyncWaiter watches the deployer (Argo CD).
type SyncWaiter interface {
	// Refresh asks the deployer to look at Git now.
	Refresh(ctx context.Context, app string) error
	// Observe reports whether app has synced sha.
	Observe(ctx context.Context, app, sha string) (SyncObservation, error)
}

// GateEvaluator assesses one gate over an analysis window. Transient
// measurement errors are counted in the result; an error return means the
// gate could not be assessed at all.
type GateEvaluator interface {
	Evaluate(ctx context.Context, gate GateSpec, w Window) (GateResult, error)
}

// ApprovalRequest is a pause-until-approved step waiting for a reviewer.
type ApprovalRequest struct {
	Plan      string
	Step      int
	Candidate Artifact
	// Evidence is the gate results so far.
	Evidence []GateResult
	// Next is the transition approval lets through.
	Next Decision
	// Propose computes, on a fresh checkout, the change Next would commit,
	// so that a reviewer can see it (e.g. as a pull request) before it lands.
	Propose TransactFunc
}

// Approvals records reviewers' approval of pause-until-approved steps.
type Approvals interface {
	Approved(ctx context.Context, plan string, step int, candidate Artifact) (bool, error)
	// Request asks for approval; calling it again is harmless.
	Request(ctx context.Context, req ApprovalRequest) error
}

// ArtifactSource reports the newest pinned artifact for a plan, or nil.
type ArtifactSource interface {
	Latest(ctx context.Context, plan *CanaryPlan) (*Artifact, error)
}

// Clock is injected so that tests and the simulator control time.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}
