package gates

import (
	"fmt"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// result builds a threshold gate's GateResult, with a reason that names
// the limit that decided the verdict and the measurement behind it.
func result(gate string, p *thresholdPlan, verdict canary.Verdict, ms []canary.Measurement, next time.Time) canary.GateResult {
	t := Count(ms)
	r := canary.GateResult{
		Gate:         gate,
		Verdict:      verdict,
		Query:        p.query,
		Condition:    p.conds.String(),
		Successful:   t.Successful,
		Failed:       t.Failed,
		Inconclusive: t.Inconclusive,
		Errors:       t.Errors,
		Measurements: ms,
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Value != "" {
			r.Value = ms[i].Value
			break
		}
	}
	if verdict == canary.VerdictRunning {
		r.NextAt = next
	}
	r.Reason = Reason(verdict, ms, p.limits, next)
	return r
}

// Reason explains a verdict Assess gave ms under l, for a reviewer: which
// limit decided it and the last measurement that counted. next is when the
// next measurement is due, used while Running.
func Reason(verdict canary.Verdict, ms []canary.Measurement, l Limits, next time.Time) string {
	t := Count(ms)
	n := len(ms)
	switch verdict {
	case canary.VerdictFailed:
		return fmt.Sprintf("%d of %d measurements failed (limit %d): %s",
			t.Failed, n, l.FailureLimit, lastMessage(ms, canary.VerdictFailed))
	case canary.VerdictInconclusive:
		return fmt.Sprintf("%d of %d measurements inconclusive (limit %d): %s",
			t.Inconclusive, n, l.InconclusiveLimit, lastMessage(ms, canary.VerdictInconclusive))
	case canary.VerdictError:
		return fmt.Sprintf("%d consecutive measurement errors (limit %d): %s",
			t.ConsecutiveErrors, l.ConsecutiveErrorLimit, lastMessage(ms, canary.VerdictError))
	case canary.VerdictSuccessful:
		return fmt.Sprintf("%d of %d measurements successful, count %d reached; %s; last: %s",
			t.Successful, n, l.Count, tallyText(t, l), lastMessage(ms, canary.VerdictSuccessful))
	}
	due := "no further measurement is due"
	if !next.IsZero() {
		due = "next measurement at " + next.UTC().Format(time.RFC3339)
	}
	if n == 0 {
		return "no measurement taken yet; " + due
	}
	return fmt.Sprintf("%d of %d measurements counted; %s; %s; last: %s",
		t.Taken, l.Count, tallyText(t, l), due, ms[n-1].Message)
}

func tallyText(t Tally, l Limits) string {
	return fmt.Sprintf("%d failed (limit %d), %d inconclusive (limit %d), %d errored",
		t.Failed, l.FailureLimit, t.Inconclusive, l.InconclusiveLimit, t.Errors)
}

// lastMessage is the message of the newest measurement with verdict v.
func lastMessage(ms []canary.Measurement, v canary.Verdict) string {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Verdict == v {
			return ms[i].Message
		}
	}
	return ""
}
