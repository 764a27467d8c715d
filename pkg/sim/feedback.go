package sim

import (
	"time"

	"github.com/canarybot/canarybot/pkg/signals"
)

// Counters the simulator reports for delayed feedback, as the judge's
// guardrails name them (signals.Interval.Counters).
const (
	// CounterFeedback counts labels as they arrive.
	CounterFeedback = "feedback"
	// CounterFeedbackCorrect counts the labels that say the answer was
	// correct, as they arrive.
	CounterFeedbackCorrect = "feedbackCorrect"
)

// MaxFeedbackDelay bounds a scenario's label delay.
const MaxFeedbackDelay = time.Hour

// Feedback is labelled feedback on a side's answers: an extension of the
// shared scenario format for canarybot's own scenarios (the shared ones
// never set it). Every successful request is labelled, correct with
// probability CorrectRate, and the label arrives Delay after the request.
// Both counters (CounterFeedback, CounterFeedbackCorrect) count labels
// when they arrive, as a feedback service exporting Prometheus counters
// would.
type Feedback struct {
	CorrectRate *float64  `json:"correctRate,omitempty"`
	Delay       *Duration `json:"delay,omitempty"`
}

// feedbackParams is a side's resolved feedback; delay -1 when none.
type feedbackParams struct {
	correct float64
	delay   int
}

func mergeFeedback(base, over *Feedback) *Feedback {
	if over == nil {
		return base
	}
	out := Feedback{}
	if base != nil {
		out = *base
	}
	if over.CorrectRate != nil {
		out.CorrectRate = over.CorrectRate
	}
	if over.Delay != nil {
		out.Delay = over.Delay
	}
	return &out
}

func resolveFeedback(f *Feedback) feedbackParams {
	if f == nil || f.CorrectRate == nil {
		return feedbackParams{delay: -1}
	}
	p := feedbackParams{correct: *f.CorrectRate}
	if f.Delay != nil {
		p.delay = ceilSeconds(f.Delay.Duration)
	}
	return p
}

func validateFeedback(f string, fb *Feedback, add addFunc) {
	if fb == nil {
		return
	}
	if v := fb.CorrectRate; v != nil && !inUnit(*v) {
		add(f+".feedback.correctRate", "must be in [0, 1], got %v", *v)
	}
	if d := fb.Delay; d != nil && (d.Duration < 0 || d.Duration > MaxFeedbackDelay) {
		add(f+".feedback.delay", "must be between 0 and %s, got %s", MaxFeedbackDelay, d.Duration)
	}
}

// hasFeedback reports whether any block of the scenario sets feedback:
// only then does every request draw a label, so that scenarios without it
// keep their random streams.
func hasFeedback(sc *Scenario) bool {
	blocks := []*Behaviour{&sc.Stable, sc.Canary}
	for _, c := range sc.Changes {
		blocks = append(blocks, c.Set)
	}
	for _, b := range blocks {
		if b != nil && b.Feedback != nil {
			return true
		}
	}
	return false
}

// labels holds, per second, the labels that arrive in it: totals and
// correct ones.
type labels struct {
	arrive, correct []float64
	// cumArrive and cumCorrect are totals over seconds < j at index j.
	cumArrive, cumCorrect []float64
}

func newLabels(capSec int) *labels {
	return &labels{cumArrive: make([]float64, 1, capSec), cumCorrect: make([]float64, 1, capSec)}
}

// add schedules one label to arrive at second at.
func (l *labels) add(at int, correct bool) {
	for len(l.arrive) <= at {
		l.arrive = append(l.arrive, 0)
		l.correct = append(l.correct, 0)
	}
	l.arrive[at]++
	if correct {
		l.correct[at]++
	}
}

// record closes second k: the labels arriving in it join the totals.
func (l *labels) record(k int) {
	var a, c float64
	if k < len(l.arrive) {
		a, c = l.arrive[k], l.correct[k]
	}
	l.cumArrive = append(l.cumArrive, l.cumArrive[k]+a)
	l.cumCorrect = append(l.cumCorrect, l.cumCorrect[k]+c)
}

// drawLabel draws the label of a request of second k on side, from the
// uniform u every request consumes when the scenario has feedback.
func (w *World) drawLabel(k int, side signals.Side, failed bool, u float64) {
	p := w.sides[side].p.feedback
	if failed || p.delay < 0 {
		return
	}
	w.labels[side].add(k+p.delay, u < p.correct)
}

// fillCounters sets the feedback counters of an interval of seconds
// [ks, ke).
func (w *World) fillCounters(iv *signals.Interval, ks, ke int) {
	if w.labels[0] == nil {
		return
	}
	var fb, ok [2]float64
	for side, l := range w.labels {
		fb[side] = l.cumArrive[ke] - l.cumArrive[ks]
		ok[side] = l.cumCorrect[ke] - l.cumCorrect[ks]
	}
	iv.Counters = map[string][2]float64{CounterFeedback: fb, CounterFeedbackCorrect: ok}
}
