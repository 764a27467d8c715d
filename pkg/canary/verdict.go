package canary

import (
	"fmt"
	"io/fs"
	"time"
)

// Verdict is a gate's assessment, after Argo Rollouts' AnalysisPhase.
type Verdict string

// Gate verdicts. Running means more measurements are due.
const (
	VerdictRunning      Verdict = "Running"
	VerdictSuccessful   Verdict = "Successful"
	VerdictFailed       Verdict = "Failed"
	VerdictInconclusive Verdict = "Inconclusive"
	VerdictError        Verdict = "Error"
)

// Measurement is one evaluation of a gate at one instant.
type Measurement struct {
	At      time.Time `json:"at"`
	Verdict Verdict   `json:"verdict"`
	Value   string    `json:"value,omitempty"`
	Message string    `json:"message,omitempty"`
}

// GateResult is a gate's verdict over an analysis window, with its evidence.
type GateResult struct {
	Gate    string  `json:"gate"`
	Verdict Verdict `json:"verdict"`
	// Query and Condition are the evidence a reviewer reads.
	Query     string `json:"query,omitempty"`
	Condition string `json:"condition,omitempty"`
	// Value is the latest observed value, rendered for humans.
	Value string `json:"value,omitempty"`
	// Window is the span the result covers, rendered for humans.
	Window       string `json:"window,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Successful   int    `json:"successful,omitempty"`
	Failed       int    `json:"failed,omitempty"`
	Inconclusive int    `json:"inconclusive,omitempty"`
	Errors       int    `json:"errors,omitempty"`
	// NextAt is when the next measurement is due while Running.
	NextAt       time.Time     `json:"nextAt,omitempty"`
	Measurements []Measurement `json:"-"`
}

// Window is the span an analysis step's gates assess.
type Window struct {
	Start time.Time
	Now   time.Time
	// RolloutStart is when the candidate's rollout started. Gates that
	// accumulate evidence over the whole rollout (the judge) read from it.
	RolloutStart time.Time
	// Repo is the GitOps repo at the revision the plan was read from, for
	// gates that read files of their own (goldenSet); read it with
	// ReadRepoFile. Nil when the caller has none.
	Repo fs.FS
}

// describe renders the window a gate read: the whole rollout for gates
// that accumulate evidence, else the current step.
func (w Window) describe(wholeRollout bool) string {
	start, what := w.Start, "step"
	if wholeRollout && !w.RolloutStart.IsZero() {
		start, what = w.RolloutStart, "rollout"
	}
	return fmt.Sprintf("%s %s → %s (%s)", what, start.UTC().Format("15:04:05"), w.Now.UTC().Format("15:04:05Z"),
		w.Now.Sub(start).Round(time.Second))
}
