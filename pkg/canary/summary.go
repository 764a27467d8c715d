package canary

import (
	"errors"
	"fmt"
	"io/fs"
)

// Summary is one line on a rollout, as /canarybot status answers it.
func Summary(plan string, st *RolloutState) string {
	if st == nil {
		return fmt.Sprintf("plan %s has no rollout state yet", plan)
	}
	s := st.Status
	line := fmt.Sprintf("plan %s is %s at step %d (canary weight %d%%); stable %s", plan, s.Phase,
		s.StepIndex, s.Weight, orDefault(s.Stable.Version, s.Stable.URI))
	if !s.Candidate.IsZero() {
		line += fmt.Sprintf(", canary %s", orDefault(s.Candidate.Version, s.Candidate.URI))
	}
	if s.Reason != "" {
		line += ". Last: " + s.Reason
	}
	return line
}

// ReadState reads plan's state file in t, or nil when it has none.
func ReadState(t Tree, plan string) (*RolloutState, error) {
	b, err := ReadRepoFile(t.FS, StatePath(plan), MaxPlanBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state of %s: %w", plan, err)
	}
	st, err := ParseState(b)
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", plan, err)
	}
	return st, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
