package sim

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

const feedbackScenario = `name: lagged
traffic: {rps: 50, maxDuration: 10m}
stable:
  errorRate: 0.1
  latency: {medianSeconds: 0.2, sigma: 0.3}
  feedback: {correctRate: 0.9, delay: 60s}
canary:
  feedback: {correctRate: 0.6}
expect: revert
`

// TestFeedbackArrivesLate: labels arrive the scenario's delay after their
// requests, one per successful request, correct at each side's rate.
func TestFeedbackArrivesLate(t *testing.T) {
	sc, err := ParseScenario([]byte(feedbackScenario))
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorld(sc, 1, Epoch())
	if err != nil {
		t.Fatal(err)
	}
	w.SetWeight(50)
	if err := w.Advance(600); err != nil {
		t.Fatal(err)
	}
	s, err := w.Read(context.Background(), Epoch(), Epoch().Add(10*time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	first := s.Intervals[0].Counters[CounterFeedback]
	if first != [2]float64{0, 0} {
		t.Errorf("labels in the first minute: %v; want none yet", first)
	}
	for side, want := range []float64{0.9, 0.6} {
		var labels, correct, ok float64
		for i := 1; i < len(s.Intervals); i++ {
			labels += s.Intervals[i].Counters[CounterFeedback][side]
			correct += s.Intervals[i].Counters[CounterFeedbackCorrect][side]
			// The labels of minute i are the successful requests of minute i-1.
			ok += s.Intervals[i-1].Requests[side] - s.Intervals[i-1].Errors[side]
		}
		if labels != ok {
			t.Errorf("side %d: %g labels; want one per successful request a minute earlier, %g", side, labels, ok)
		}
		if got := correct / labels; math.Abs(got-want) > 0.03 {
			t.Errorf("side %d: %.3f of labels correct; want about %g", side, got, want)
		}
	}
}

func TestFeedbackValidationAndAbsence(t *testing.T) {
	bad := strings.Replace(feedbackScenario, "correctRate: 0.6", "correctRate: 1.6", 1)
	bad = strings.Replace(bad, "delay: 60s", "delay: 2h", 1)
	_, err := ParseScenario([]byte(bad))
	for _, want := range []string{"canary.feedback.correctRate: must be in [0, 1]", "stable.feedback.delay: must be between 0 and 1h0m0s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	sc, err := ParseScenario([]byte("name: plain\ntraffic: {rps: 5, maxDuration: 1m}\nstable: {latency: {medianSeconds: 0.2, sigma: 0.3}}\nexpect: promote\n"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorld(sc, 1, Epoch())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Advance(30); err != nil {
		t.Fatal(err)
	}
	s, err := w.Read(context.Background(), Epoch(), Epoch().Add(30*time.Second), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s.Intervals[0].Counters != nil {
		t.Errorf("a scenario without feedback reports counters %v", s.Intervals[0].Counters)
	}
}

// TestWriteOpenMetricsFeedback: the feedback counters are written under
// the names given, cumulative per side, and their increments over each
// interval are the counters Read gives the guardrails in memory.
func TestWriteOpenMetricsFeedback(t *testing.T) {
	sc, err := ParseScenario([]byte(feedbackScenario))
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorld(sc, 2, Epoch())
	if err != nil {
		t.Fatal(err)
	}
	w.SetWeight(30)
	if err := w.Advance(300); err != nil {
		t.Fatal(err)
	}
	names := MetricNames{Requests: "requests_total", Feedback: "labels_total", FeedbackCorrect: "labels_correct_total"}
	labels := [2]map[string]string{{"side": "stable"}, {"side": "canary"}}
	var buf bytes.Buffer
	if err := WriteOpenMetrics(&buf, names, ExportRun{World: w, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	series := parseOpenMetrics(t, buf.String())
	s, err := w.Read(context.Background(), Epoch(), Epoch().Add(5*time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for side, sel := range []string{`{side="stable"}`, `{side="canary"}`} {
		for name, counter := range map[string]string{"labels_total": CounterFeedback, "labels_correct_total": CounterFeedbackCorrect} {
			got := series[name+sel]
			if len(got) != 301 {
				t.Fatalf("%s%s: %d samples, want one a second from 0 to 300", name, sel, len(got))
			}
			for i, iv := range s.Intervals {
				inc := got[60*(i+1)].value - got[60*i].value
				if want := iv.Counters[counter][side]; inc != want || (i > 1 && want == 0) {
					t.Errorf("%s%s in minute %d: increment %g, want %g (nonzero after the first minute)", name, sel, i, inc, want)
				}
			}
		}
	}
}
