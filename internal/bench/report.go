package bench

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// Policy names, as the table shows them.
const (
	PolicyJudge    = "judge"
	PolicyStrict   = "judge-strict"
	PolicyBaseline = "seed-thresholds"
)

// Results are runs by policy, then by scenario.
type Results map[string]map[string][]Run

// Add files a run under its policy and scenario.
func (r Results) Add(policy string, run Run) {
	if r[policy] == nil {
		r[policy] = map[string][]Run{}
	}
	r[policy][run.Scenario] = append(r[policy][run.Scenario], run)
}

// Render prints the decision table, the A/A line and the targets. order
// lists the scenarios in the order to show them.
func Render(w io.Writer, res Results, order []string, seeds int) bool {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "Decision quality: %d scenarios × %d seeds, identical traces for every policy.\n", len(order), seeds)
	fmt.Fprintln(w, "canary req = canary requests served before the decision (median / p80 / p95).")
	fmt.Fprintln(tw, "scenario\texpect\tjudge correct\tcanary req\ttime (med)\tthresholds correct\tcanary req\ttime (med)\tp80 req ratio\t")
	for _, sc := range order {
		j, b := Summarize(res[PolicyJudge][sc]), Summarize(res[PolicyBaseline][sc])
		expect := ""
		if runs := res[PolicyJudge][sc]; len(runs) > 0 {
			expect = runs[0].Expected
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", sc, expect,
			pct(j.CorrectRate()), reqs(j), dur(j.MedianSeconds),
			pct(b.CorrectRate()), reqs(b), dur(b.MedianSeconds), ratio(b.P80Requests, j.P80Requests))
	}
	tw.Flush()
	fmt.Fprintln(w)
	return renderTargets(w, res, order)
}

// target is one line of the targets.
type target struct {
	name   string
	ok     bool
	detail string
}

func renderTargets(w io.Writer, res Results, order []string) bool {
	var ts []target
	bad := 0
	worst, worstName := 1.0, ""
	for _, sc := range order {
		s := Summarize(res[PolicyJudge][sc])
		bad += s.BadPromotions
		if r := s.CorrectRate(); r < worst {
			worst, worstName = r, sc
		}
	}
	ts = append(ts, target{"0 bad canaries promoted", bad == 0, fmt.Sprintf("%d promoted", bad)})
	// The A/A scenarios are those the strict policy ran on.
	aaNames := slices.Sorted(maps.Keys(res[PolicyStrict]))
	for _, p := range []struct {
		policy string
		limit  float64
	}{{PolicyJudge, 0.05}, {PolicyStrict, 0.01}} {
		var runs []Run
		for _, sc := range aaNames {
			runs = append(runs, res[p.policy][sc]...)
		}
		s := Summarize(runs)
		if s.Runs == 0 {
			ts = append(ts, target{fmt.Sprintf("A/A false reverts ≤ %.0f%% (%s)", p.limit*100, p.policy), false, "no A/A scenario run"})
			continue
		}
		rate := float64(s.FalseReverts) / float64(s.Runs)
		ts = append(ts, target{fmt.Sprintf("A/A false reverts ≤ %.0f%% (%s, peeking every 10 s)", p.limit*100, p.policy),
			rate <= p.limit, fmt.Sprintf("%d/%d = %s", s.FalseReverts, s.Runs, pct(rate))})
	}
	ts = append(ts, requestTarget(res, "error-rate-10x", "errors 0.1%→1% decided within 1500 canary requests at p80", 0.8, 1500))
	ts = append(ts, requestTarget(res, "latency-plus-40", "latency +40% decided within 300 canary requests at p95", 0.95, 300))
	ts = append(ts, target{"every scenario correct for ≥ 99% of seeds", worst >= 0.99, fmt.Sprintf("worst: %s %s", worstName, pct(worst))})
	return printTargets(w, "Targets (canarybot judge):", ts)
}

// printTargets prints each target with PASS or FAIL under title, and
// reports whether all passed.
func printTargets(w io.Writer, title string, ts []target) bool {
	all := true
	fmt.Fprintln(w, title)
	for _, t := range ts {
		mark := "PASS"
		if !t.ok {
			mark, all = "FAIL", false
		}
		fmt.Fprintf(w, "  [%s] %s: %s\n", mark, t.name, t.detail)
	}
	return all
}

func requestTarget(res Results, sc, name string, q, limit float64) target {
	runs := res[PolicyJudge][sc]
	if len(runs) == 0 {
		return target{name, false, sc + " not run"}
	}
	var xs []float64
	for _, r := range runs {
		v := float64(r.CanaryRequests)
		if !r.Correct() {
			v = math.Inf(1) // a wrong or missing decision never counts as fast
		}
		xs = append(xs, v)
	}
	got := Quantile(xs, q)
	return target{name, got <= limit, fmt.Sprintf("p%.0f = %.0f", q*100, got)}
}

func pct(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", x*100)
}

func reqs(s Stats) string {
	if s.Runs == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f / %.0f / %.0f", s.MedianRequests, s.P80Requests, s.P95Requests)
}

func dur(secs float64) string {
	if math.IsNaN(secs) {
		return "-"
	}
	return strings.Replace(fmt.Sprintf("%.1fm", secs/60), ".0m", "m", 1)
}

func ratio(baseline, judge float64) string {
	if judge <= 0 || math.IsNaN(judge) || math.IsNaN(baseline) {
		return "-"
	}
	return fmt.Sprintf("%.1f×", baseline/judge)
}
