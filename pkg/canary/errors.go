package canary

import (
	"errors"
	"fmt"

	"github.com/canarybot/canarybot/pkg/artifact"
)

// Sentinel errors.
var (
	// ErrInvalidPlan marks a plan that failed decoding or validation.
	ErrInvalidPlan = errors.New("invalid plan")
	// ErrInvalidTemplate marks a GateTemplate that failed decoding or
	// validation.
	ErrInvalidTemplate = errors.New("invalid GateTemplate")
	// ErrInvalidState marks a state file that cannot be read.
	ErrInvalidState = errors.New("invalid rollout state")
	// ErrHumanOwned marks an attempt to write a file the bot does not own.
	ErrHumanOwned = errors.New("file is not owned by canarybot")
	// ErrMutableReference marks an artifact reference that is not pinned.
	// It is artifact.ErrMutable, which artifact.Parse's errors wrap.
	ErrMutableReference = artifact.ErrMutable
)

// TerminalError is an error that retrying cannot fix.
type TerminalError struct{ Err error }

func (e *TerminalError) Error() string { return e.Err.Error() }
func (e *TerminalError) Unwrap() error { return e.Err }

// Terminal wraps err so that IsTerminal reports true. Terminal(nil) is nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &TerminalError{Err: err}
}

// Terminalf formats an error and marks it terminal.
func Terminalf(format string, args ...any) error {
	return Terminal(fmt.Errorf(format, args...))
}

// IsTerminal reports whether err, or any error it wraps, is terminal.
func IsTerminal(err error) bool {
	var t *TerminalError
	return errors.As(err, &t)
}
