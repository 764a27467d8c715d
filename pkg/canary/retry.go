package canary

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ActionRetry is the Canarybot-Action of a person's retry commit, which
// takes an artifact off the failed list so that it may be proposed again.
const ActionRetry = "retry"

// ErrNotFailed marks a retry of an artifact that is not on the failed list.
var ErrNotFailed = errors.New("artifact is not on the failed list")

// Retry returns the state with uri removed from the failed list and the
// retry recorded in the history. It is pure, like Apply; the caller
// commits the result with RetryChange. It fails with ErrNotFailed when uri
// was never reverted, naming the artifacts that were.
func Retry(st *RolloutState, uri, reason string, now time.Time) (*RolloutState, Artifact, error) {
	next := *st
	s := &next.Status
	s.Failed = nil
	var removed Artifact
	for _, f := range st.Status.Failed {
		if f.URI == uri {
			removed = f
			continue
		}
		s.Failed = append(s.Failed, f)
	}
	if removed.IsZero() {
		failed := make([]string, 0, len(st.Status.Failed))
		for _, f := range st.Status.Failed {
			failed = append(failed, f.URI)
		}
		list := "none"
		if len(failed) > 0 {
			list = strings.Join(failed, ", ")
		}
		return nil, Artifact{}, fmt.Errorf("%w: plan %s, %s; failed: %s", ErrNotFailed, st.Metadata.Name, uri, list)
	}
	if reason == "" {
		reason = "a person asked to retry " + versionOf(removed)
	}
	s.History = append(append([]HistoryEntry(nil), st.Status.History...), HistoryEntry{
		At: now.UTC(), Action: ActionRetry, Step: s.StepIndex, Weight: s.Weight, Artifact: uri, Reason: reason,
	})
	if n := len(s.History); n > MaxHistory {
		s.History = s.History[n-MaxHistory:]
	}
	return &next, removed, nil
}

// RetryChange is the commit of a state Retry returned: the new state file,
// with trailers Canarybot-Plan, Canarybot-Step, Canarybot-Action: retry and
// Canarybot-Artifact.
func RetryChange(after *RolloutState, a Artifact) (Change, error) {
	b, err := MarshalState(after)
	if err != nil {
		return Change{}, err
	}
	plan := after.Metadata.Name
	reason := ""
	if h := after.Status.History; len(h) > 0 {
		reason = h[len(h)-1].Reason
	}
	return Change{
		Files:   map[string][]byte{StatePath(plan): b},
		Subject: fmt.Sprintf("canary(%s): retry %s", plan, versionOf(a)),
		Body: reason + "\n\n" + a.URI + " is off the failed list; canarybot may propose it again " +
			"when the registry offers it.",
		Trailers: []Trailer{
			{TrailerPlan, plan},
			{TrailerStep, strconv.Itoa(after.Status.StepIndex)},
			{TrailerAction, ActionRetry},
			{TrailerArtifact, a.URI},
		},
	}, nil
}
