package gates

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// metricKeys are the signals.metrics keys PromSignals reads as signals of
// their own; every other key names a counter for the judge's guardrails.
var metricKeys = map[string]bool{"requests": true, "errors": true, "latency": true, "ttft": true,
	"tpot": true, "predictions": true, "kvCache": true, "queueDepth": true}

// customCounters lists, sorted, the keys of names that are guardrail
// counters.
func customCounters(names map[string]string) []string {
	var out []string
	for k, v := range names {
		if !metricKeys[k] && v != "" {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// counters reads every guardrail counter of names into Interval.Counters.
func (r *sideReader) counters(ctx context.Context, names map[string]string) error {
	win := model.Duration(r.step).String()
	for _, k := range customCounters(names) {
		q := fmt.Sprintf("sum(increase(%s[%s]))", withMatchers(names[k], "", r.sel), win)
		set := func(iv *signals.Interval, v float64) {
			if iv.Counters == nil {
				iv.Counters = map[string][2]float64{}
			}
			c := iv.Counters[k]
			c[r.side] = v
			iv.Counters[k] = c
		}
		if err := r.scalar(ctx, q, set, false); err != nil {
			return fmt.Errorf("guardrail counter %s: %w", k, err)
		}
	}
	return nil
}

// guardrailSelectors checks that every counter a guardrail names in
// signals.metrics is a plain series selector: it is spliced into the
// queries PromSignals runs.
func guardrailSelectors(plan *canary.CanaryPlan) error {
	var errs []error
	for i, g := range plan.Spec.Gates {
		if g.Judge == nil || g.Signals == nil {
			continue
		}
		f := fmt.Sprintf("spec.gates[%d].signals.metrics", i)
		if g.Signals == plan.Spec.Signals {
			f = "spec.signals.metrics"
		}
		for _, gr := range g.Judge.Guardrails {
			for _, k := range []string{gr.Success, gr.Total} {
				v, ok := g.Signals.Metrics[k]
				if !ok {
					continue
				}
				if _, err := parser.ParseMetricSelector(v); err != nil {
					errs = append(errs, fmt.Errorf("%s.%s: not a series selector: %w", f, k, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// guardrailNames lists the judge's guardrails by name, for its α split.
func guardrailNames(j *canary.JudgeGate) []string {
	out := make([]string, len(j.Guardrails))
	for i, g := range j.Guardrails {
		out[i] = g.Name
	}
	return out
}

// counterPair is one counter's increments in an interval, by side.
func counterPair(iv *signals.Interval, name string) [2]float64 {
	switch name {
	case "requests":
		return iv.Requests
	case "errors":
		return iv.Errors
	}
	return iv.Counters[name]
}

// guardrailCounts slices the series into the guardrail test's intervals.
//
// With a label delay d, the cohort judged is the requests from testFrom to
// now−d, the same for both sides. When total counts requests as they are
// served (TotalAtLabel false: conversions over requests), each interval's
// total is paired with the successes counted d later, so that every pair
// counts the same requests; the last d of totals wait for their feedback.
// When total counts labels too (labelled-correct over labelled), both
// counters already count the same cohort as labels arrive, and the window
// starts d after testFrom, so that labels of warm-up requests are left out.
// Either way neither side's not-yet-labelled share enters the comparison.
// It also returns stable's success rate before the window, the reference
// that turns relative margins into odds ratios.
func guardrailCounts(g canary.Guardrail, s *signals.Series, testFrom time.Time) ([]PairCounts, float64, string) {
	d := g.LabelDelay.Duration
	shift := 0
	if !g.TotalAtLabel && d > 0 && len(s.Intervals) > 0 {
		step := s.Intervals[0].End.Sub(s.Intervals[0].Start)
		shift = int((d + step - 1) / step)
	}
	from := testFrom
	if g.TotalAtLabel {
		from = testFrom.Add(d)
	}
	var out []PairCounts
	var refOK, refTotal float64
	for i := range s.Intervals {
		iv := &s.Intervals[i]
		if iv.NoData || i+shift >= len(s.Intervals) || s.Intervals[i+shift].NoData {
			continue
		}
		total, ok := counterPair(iv, g.Total), counterPair(&s.Intervals[i+shift], g.Success)
		if iv.Start.Before(from) {
			refTotal += nonNaN(total[signals.Stable])
			refOK += nonNaN(ok[signals.Stable])
			continue
		}
		out = append(out, PairCounts{TotalS: total[signals.Stable], TotalC: total[signals.Canary],
			SuccessS: ok[signals.Stable], SuccessC: ok[signals.Canary]})
	}
	if refTotal <= 0 || refOK <= 0 || refOK >= refTotal {
		return nil, 0, fmt.Sprintf("%s: no stable history of %s over %s before the test window", g.Name, g.Success, g.Total)
	}
	return out, refOK / refTotal, ""
}

// guardrails runs every guardrail's two tests over the rollout so far.
func guardrails(j *canary.JudgeGate, s *signals.Series, testFrom time.Time, shares map[string]float64, passing int) []metricVerdict {
	var out []metricVerdict
	for _, g := range j.Guardrails {
		counts, ref, why := guardrailCounts(g, s, testFrom)
		if why != "" {
			out = append(out, metricVerdict{g.Name, canary.VerdictRunning, why})
			continue
		}
		alpha, beta := *j.Alpha*shares[g.Name], *j.Beta/float64(max(passing, 1))
		psiFail := OddsForRatio(1-*g.RollbackMargin, ref)
		psiPass := OddsForRatio(1-*g.PromoteMargin, ref)
		p := RunPairTests(counts, alpha, beta, psiFail, psiPass)
		mv := assessPair(g, p)
		if j.Mode == canary.JudgeScreen && mv.verdict == canary.VerdictRunning {
			mv.verdict, mv.detail = canary.VerdictSuccessful, "no evidence of harm yet: "+mv.detail
		}
		out = append(out, mv)
	}
	return out
}

// assessPair turns the guardrail tests into a verdict: the first test to
// cross decides.
func assessPair(g canary.Guardrail, p PairPath) metricVerdict {
	rate := func(k, n float64) float64 { return 100 * k / math.Max(n, 1) }
	detail := fmt.Sprintf("%s %.3g%% canary vs %.3g%% stable (%s/%s, ratio %.3g) over %.0f canary / %.0f stable (e %.3g)",
		g.Name, rate(p.SuccessC, p.TotalC), rate(p.SuccessS, p.TotalS), g.Success, g.Total, p.Ratio(),
		p.TotalC, p.TotalS, p.WorseE)
	switch {
	case p.WorseAt >= 0 && (p.NotWorseAt < 0 || p.WorseAt <= p.NotWorseAt):
		return metricVerdict{g.Name, canary.VerdictFailed,
			fmt.Sprintf("canary worse by more than %g%%: %s", 100**g.RollbackMargin, detail)}
	case p.NotWorseAt >= 0:
		return metricVerdict{g.Name, canary.VerdictSuccessful,
			fmt.Sprintf("within %g%% of stable: %s", 100**g.PromoteMargin, detail)}
	}
	return metricVerdict{g.Name, canary.VerdictRunning, "collecting: " + detail}
}
