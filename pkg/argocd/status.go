// Package argocd tells canarybot when Argo CD has applied a commit. Ready is
// pure; Waiter adapts any StatusSource (the real apiclient, or the demo's
// local stand-in) to the engine's SyncWaiter port.
package argocd

import (
	"context"
	"fmt"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Sync statuses, operation phases and health codes, as Argo CD spells them.
const (
	SyncSynced    = "Synced"
	SyncOutOfSync = "OutOfSync"

	PhaseRunning   = "Running"
	PhaseSucceeded = "Succeeded"
	PhaseFailed    = "Failed"
	PhaseError     = "Error"

	HealthHealthy     = "Healthy"
	HealthProgressing = "Progressing"
	HealthDegraded    = "Degraded"
	HealthMissing     = "Missing"
	HealthSuspended   = "Suspended"
)

// AppStatus is an Application's status, normalised.
type AppStatus struct {
	App string
	// SyncStatus and SyncRevision are status.sync: what Argo CD compared to.
	// SyncRevision can name a commit before it is applied.
	SyncStatus   string
	SyncRevision string
	// OperationPhase and OperationRevision are status.operationState and its
	// syncResult: what the last sync operation applied.
	OperationPhase    string
	OperationRevision string
	OperationMessage  string
	// OperationRetries counts the retries of a failing sync: Argo CD keeps
	// such an operation Running while it backs off and tries again.
	OperationRetries int64
	FinishedAt       time.Time
	Health           string
	HealthMessage    string
	// ReconciledAt is when health was last assessed.
	ReconciledAt time.Time
}

// StatusSource reads and refreshes Applications.
type StatusSource interface {
	Status(ctx context.Context, app string) (AppStatus, error)
	Refresh(ctx context.Context, app string) error
}

// Ready reports whether s shows sha applied and healthy: the last sync
// operation applied exactly sha and succeeded, health is Healthy, and health
// was assessed after that operation finished. The reason says what is missing.
func Ready(s AppStatus, sha string) (bool, string) {
	switch {
	case s.OperationRevision != sha:
		return false, fmt.Sprintf("last sync applied %s, not %s (sync status %s)", short(s.OperationRevision), short(sha), or(s.SyncStatus, "Unknown"))
	case s.OperationPhase != PhaseSucceeded:
		return false, fmt.Sprintf("sync of %s is %s %s", short(sha), or(s.OperationPhase, "pending"), s.OperationMessage)
	case s.Health != HealthHealthy:
		return false, fmt.Sprintf("health is %s %s", or(s.Health, "Unknown"), s.HealthMessage)
	case s.FinishedAt.IsZero() || s.ReconciledAt.Before(s.FinishedAt):
		return false, fmt.Sprintf("health not reassessed since the sync of %s finished", short(sha))
	}
	return true, "synced " + short(sha) + " and Healthy"
}

// Failed reports whether s shows the sync of sha failed or the app broke
// after it: a failed or errored operation for sha, or Degraded/Missing
// health assessed after that operation.
func Failed(s AppStatus, sha string) (bool, string) {
	if s.OperationRevision != sha {
		return false, ""
	}
	switch s.OperationPhase {
	case PhaseFailed, PhaseError:
		return true, fmt.Sprintf("sync of %s %s: %s", short(sha), s.OperationPhase, s.OperationMessage)
	case PhaseRunning:
		if s.OperationRetries > 0 {
			return true, fmt.Sprintf("sync of %s keeps failing (retry %d): %s", short(sha), s.OperationRetries, s.OperationMessage)
		}
	case PhaseSucceeded:
		if (s.Health == HealthDegraded || s.Health == HealthMissing) && !s.ReconciledAt.Before(s.FinishedAt) {
			return true, fmt.Sprintf("health %s after syncing %s: %s", s.Health, short(sha), s.HealthMessage)
		}
	}
	return false, ""
}

// Waiter implements canary.SyncWaiter over a StatusSource.
type Waiter struct {
	Source StatusSource
	// Contains reports whether ancestor is in rev's history. When Argo CD has
	// moved past the target commit (a later commit landed), readiness is
	// judged on the newer revision that contains it.
	Contains func(ctx context.Context, rev, ancestor string) (bool, error)
}

var _ canary.SyncWaiter = (*Waiter)(nil)

// Refresh asks Argo CD to compare with Git now.
func (w *Waiter) Refresh(ctx context.Context, app string) error {
	if err := w.Source.Refresh(ctx, app); err != nil {
		return fmt.Errorf("refresh %s: %w", app, err)
	}
	return nil
}

// Observe reports whether app has applied sha, or a descendant of it.
func (w *Waiter) Observe(ctx context.Context, app, sha string) (canary.SyncObservation, error) {
	s, err := w.Source.Status(ctx, app)
	if err != nil {
		return canary.SyncObservation{}, fmt.Errorf("status of %s: %w", app, err)
	}
	target := sha
	if s.OperationRevision != "" && s.OperationRevision != sha && w.Contains != nil {
		ok, err := w.Contains(ctx, s.OperationRevision, sha)
		if err != nil {
			return canary.SyncObservation{}, fmt.Errorf("is %s in %s: %w", short(sha), short(s.OperationRevision), err)
		}
		if ok {
			target = s.OperationRevision
		}
	}
	obs := canary.SyncObservation{Revision: s.OperationRevision}
	if failed, why := Failed(s, target); failed {
		obs.Failed, obs.Reason = true, why
		return obs, nil
	}
	obs.Ready, obs.Reason = Ready(s, target)
	if obs.Ready {
		obs.SyncedAt = s.FinishedAt
	}
	return obs, nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	if sha == "" {
		return "nothing"
	}
	return sha
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
