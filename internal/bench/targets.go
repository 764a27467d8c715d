package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/canarybot/canarybot/pkg/sim"
)

// IsAA reports whether the canary behaves as stable throughout: sim's A/A
// (no canary field, no change to either side), or every change to one
// side matched by the same change to the other at the same time (a fault
// both sides share, such as an upstream dependency that flaps). Every
// revert of such a scenario is a false alarm.
func IsAA(sc *sim.Scenario) bool {
	if sc.IsAA() {
		return true
	}
	if sc.Expect != sim.OutcomePromote || !reflect.DeepEqual(sc.CanaryBase(), sc.Stable) {
		return false
	}
	var side [2][]sim.Change
	for _, c := range sc.Changes {
		switch c.Target {
		case sim.TargetStable:
			side[0] = append(side[0], c)
		case sim.TargetCanary:
			side[1] = append(side[1], c)
		}
	}
	for i := range side[1] {
		side[1][i].Target = sim.TargetStable // compared but for the target
	}
	return len(side[0]) > 0 && reflect.DeepEqual(side[0], side[1])
}

// Baseline is each scenario's p80 canary requests before the decision,
// under the judge, at the commit the targets compare with.
type Baseline map[string]float64

// MaxBaselineBytes bounds a baseline file.
const MaxBaselineBytes = 1 << 20

// LoadBaseline reads a baseline: one "scenario p80" pair a line, blank
// lines and lines starting with # ignored.
func LoadBaseline(path string) (Baseline, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read baseline: %w", err)
	}
	defer f.Close()
	b := Baseline{}
	sc := bufio.NewScanner(io.LimitReader(f, MaxBaselineBytes))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"scenario p80\", got %q", path, n, line)
		}
		v, err := strconv.ParseFloat(fs[1], 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%s:%d: p80 %q is not a count", path, n, fs[1])
		}
		b[fs[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read baseline %s: %w", path, err)
	}
	return b, nil
}

// RenderIssueTargets prints the targets of issue 17 (intermittent faults,
// item 1; decision speed, item 4) with PASS or FAIL, and reports whether
// all passed. aa names the A/A scenarios (IsAA), pooled whether or not
// the strict policy ran. base may be nil: the comparison with it then
// fails.
func RenderIssueTargets(w io.Writer, res Results, order, aa []string, base Baseline) bool {
	ts := []target{revertedTarget(res, order), aaPooledTarget(res, aa), baselineTarget(res, order, base),
		requestTarget(res, "error-rate-10x", "errors 0.1%→1% (error-rate-10x) decided within 900 canary requests at p80", 0.8, 900),
		requestTarget(res, "latency-plus-20", "latency +20% at every quantile (latency-plus-20) reverted within 300 canary requests at p95", 0.95, 300),
		promotedTarget(res, "canary-faster", 0.995)}
	return printTargets(w, "Targets (issue 17: intermittent faults and decision speed, canarybot judge):", ts)
}

// revertedTarget: every expect: revert scenario reverted in ≥ 99% of seeds.
func revertedTarget(res Results, order []string) target {
	name := "every bad scenario reverted in ≥ 99% of seeds"
	worst, worstName, n := 1.0, "", 0
	var under []string
	for _, sc := range order {
		runs := res[PolicyJudge][sc]
		if len(runs) == 0 || runs[0].Expected != sim.OutcomeRevert {
			continue
		}
		n++
		r := Summarize(runs).CorrectRate()
		if r < 0.99 {
			under = append(under, fmt.Sprintf("%s %s", sc, pct(r)))
		}
		if r < worst || worstName == "" {
			worst, worstName = r, sc
		}
	}
	if n == 0 {
		return target{name, false, "no bad scenario run"}
	}
	detail := fmt.Sprintf("%d scenarios, worst %s %s", n, worstName, pct(worst))
	if len(under) > 0 {
		detail += "; under 99%: " + strings.Join(under, ", ")
	}
	return target{name, len(under) == 0, detail}
}

// aaPooledTarget: the judge's false reverts over every A/A scenario's runs
// together.
func aaPooledTarget(res Results, aa []string) target {
	var runs []Run
	for _, sc := range aa {
		runs = append(runs, res[PolicyJudge][sc]...)
	}
	name := fmt.Sprintf("A/A false reverts ≤ 1%%, all %d A/A scenarios pooled (judge)", len(aa))
	s := Summarize(runs)
	if s.Runs == 0 {
		return target{name, false, "no A/A scenario run"}
	}
	rate := float64(s.FalseReverts) / float64(s.Runs)
	return target{name, rate <= 0.01, fmt.Sprintf("%d/%d = %s", s.FalseReverts, s.Runs, pct(rate))}
}

// baselineTarget: no scenario's p80 canary requests more than 10% above
// the baseline's. Scenarios the baseline does not list are named, not
// judged.
func baselineTarget(res Results, order []string, base Baseline) target {
	name := "no scenario's p80 canary requests more than 10% above the baseline's"
	if base == nil {
		return target{name, false, "no baseline (--baseline)"}
	}
	worst, worstName, compared := math.Inf(-1), "", 0
	var over, missing []string
	for _, sc := range order {
		b, ok := base[sc]
		s := Summarize(res[PolicyJudge][sc])
		if s.Runs == 0 {
			continue
		}
		if !ok || b <= 0 {
			missing = append(missing, sc)
			continue
		}
		compared++
		change := s.P80Requests/b - 1
		if change > worst {
			worst, worstName = change, sc
		}
		if change > 0.10 {
			over = append(over, fmt.Sprintf("%s %.0f→%.0f", sc, b, s.P80Requests))
		}
	}
	if compared == 0 {
		return target{name, false, "no scenario in the baseline"}
	}
	detail := fmt.Sprintf("%d compared, largest change %s %+.1f%%", compared, worstName, 100*worst)
	if len(over) > 0 {
		detail += "; over: " + strings.Join(over, ", ")
	}
	if len(missing) > 0 {
		detail += fmt.Sprintf("; %d not in the baseline", len(missing))
	}
	return target{name, len(over) == 0, detail}
}

// promotedTarget: the scenario promoted in at least share of its seeds.
func promotedTarget(res Results, sc string, share float64) target {
	name := fmt.Sprintf("%s promoted in ≥ %.1f%% of seeds", sc, share*100)
	runs := res[PolicyJudge][sc]
	if len(runs) == 0 {
		return target{name, false, sc + " not run"}
	}
	s := Summarize(runs)
	return target{name, s.CorrectRate() >= share, fmt.Sprintf("%d/%d = %s", s.Correct, s.Runs, pct(s.CorrectRate()))}
}
