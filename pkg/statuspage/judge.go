package statuspage

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
)

// JudgeChart is one judge gate's estimates over the rollout, one series
// per metric whose test concluded at some transition.
type JudgeChart struct {
	Gate    string        `json:"gate"`
	Metrics []JudgeSeries `json:"metrics"`
}

// JudgeSeries is one metric's estimates, oldest first, and its decision
// boundaries: evidence of a ratio above 1 fails the canary, evidence of a
// ratio below Margin passes it.
type JudgeSeries struct {
	Metric string       `json:"metric"`
	Margin float64      `json:"margin"`
	Points []JudgePoint `json:"points"`
}

// JudgePoint is the estimate a transition's state recorded: the ratio of
// the canary's event rate to stable's and its confidence bounds.
type JudgePoint struct {
	At       time.Time `json:"at"`
	Commit   string    `json:"commit"`
	Step     int       `json:"step"`
	Estimate float64   `json:"estimate"`
	Low      float64   `json:"low"`
	// High is omitted when the bound is infinite (Unbounded).
	High           float64 `json:"high,omitempty"`
	Unbounded      bool    `json:"unbounded,omitempty"`
	Worse          bool    `json:"worse,omitempty"`
	CanaryRequests float64 `json:"canaryRequests"`
	StableRequests float64 `json:"stableRequests"`
}

// judgeGates names the plan's judge gates, or nil without a plan.
func judgeGates(p *canary.CanaryPlan) []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, g := range p.Spec.Gates {
		if g.Type == canary.GateJudge {
			out = append(out, g.Name)
		}
	}
	return out
}

// margin is metric's materially-worse ratio in gate of p.
func margin(p *canary.CanaryPlan, gate, metric string) float64 {
	if p != nil {
		if g, ok := p.Gate(gate); ok && g.Judge != nil {
			if m, ok := g.Judge.Margins[metric]; ok {
				return m
			}
		}
	}
	return canary.DefaultMargin(metric)
}

// judgeCharts collects, per judge gate, the estimates each transition's
// state recorded (states[i] was written by ts[i]; nil when unreadable).
// A result carried unchanged into later states counts once. Without the
// plan, any gate whose reasons hold estimates is charted.
func judgeCharts(p *canary.CanaryPlan, ts []Transition, states []*canary.RolloutState) []JudgeChart {
	names := judgeGates(p)
	series := map[string]map[string]*JudgeSeries{}
	last := map[string]string{}
	for i, st := range states {
		if st == nil {
			continue
		}
		for _, g := range st.Status.Gates {
			if p != nil && !slices.Contains(names, g.Gate) {
				continue
			}
			key := g.Window + "\x00" + g.Reason
			if last[g.Gate] == key {
				continue
			}
			last[g.Gate] = key
			for _, e := range gates.ParseJudgeEstimates(g.Reason) {
				if math.IsNaN(e.Estimate) || math.IsInf(e.Estimate, 0) {
					continue
				}
				if p == nil && !slices.Contains(names, g.Gate) {
					names = append(names, g.Gate)
				}
				if series[g.Gate] == nil {
					series[g.Gate] = map[string]*JudgeSeries{}
				}
				sr := series[g.Gate][e.Metric]
				if sr == nil {
					sr = &JudgeSeries{Metric: e.Metric, Margin: margin(p, g.Gate, e.Metric)}
					series[g.Gate][e.Metric] = sr
				}
				sr.Points = append(sr.Points, point(ts[i], e))
			}
		}
	}
	var out []JudgeChart
	for _, n := range names {
		c := JudgeChart{Gate: n, Metrics: []JudgeSeries{}}
		for _, sr := range series[n] {
			c.Metrics = append(c.Metrics, *sr)
		}
		slices.SortFunc(c.Metrics, func(a, b JudgeSeries) int { return strings.Compare(a.Metric, b.Metric) })
		out = append(out, c)
	}
	return out
}

func point(t Transition, e gates.JudgeEstimate) JudgePoint {
	pt := JudgePoint{At: t.At, Commit: t.Commit, Step: t.Step, Estimate: e.Estimate, Low: e.Low, High: e.High,
		Worse: e.Worse, CanaryRequests: e.CanaryRequests, StableRequests: e.StableRequests}
	if math.IsNaN(pt.Low) || math.IsInf(pt.Low, 0) {
		pt.Low = 0
	}
	if math.IsInf(pt.High, 1) || math.IsNaN(pt.High) {
		pt.High, pt.Unbounded = 0, true
	}
	return pt
}

// gatesOf shows the last analysis results, typed by the plan's gates.
func gatesOf(p *canary.CanaryPlan, results []canary.GateResult) []Gate {
	out := []Gate{}
	for _, r := range results {
		var spec canary.GateSpec
		if p != nil {
			spec, _ = p.Gate(r.Gate)
		}
		ests := gates.ParseJudgeEstimates(r.Reason)
		g := Gate{Gate: r.Gate, Type: spec.Type, Verdict: string(r.Verdict), Query: clean(r.Query), Window: r.Window,
			Observed: clean(r.Value), Bounds: clean(r.Condition), Reason: clean(r.Reason),
			Successful: r.Successful, Failed: r.Failed, Inconclusive: r.Inconclusive, Errors: r.Errors}
		if g.Type == "" && len(ests) > 0 {
			g.Type = canary.GateJudge
		}
		if g.Type == canary.GateJudge {
			g.Observed, g.Bounds = judgeObserved(ests, r.Value), judgeBounds(p, r.Gate, spec.Judge, ests)
			if g.Query == "" && spec.Judge != nil {
				g.Query = fmt.Sprintf("judge (%s): %s", spec.Judge.Mode, strings.Join(spec.Judge.Metrics, ", "))
			}
		}
		out = append(out, g)
	}
	return out
}

// judgeObserved renders the judge's estimates: "errors 3.10× [1.80, 5.40]".
func judgeObserved(ests []gates.JudgeEstimate, value string) string {
	if len(ests) == 0 {
		return clean(value)
	}
	var parts []string
	for _, e := range ests {
		s := fmt.Sprintf("%s %.2f× [%.2f, %.2f] over %.0f canary requests", e.Metric, e.Estimate, e.Low, e.High, e.CanaryRequests)
		if e.Worse {
			s += " (worse)"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// judgeBounds states the judge's decision rule with each metric's margin.
func judgeBounds(p *canary.CanaryPlan, gate string, j *canary.JudgeGate, ests []gates.JudgeEstimate) string {
	var metrics []string
	if j != nil {
		metrics = j.Metrics
	}
	for _, e := range ests {
		if !slices.Contains(metrics, e.Metric) {
			metrics = append(metrics, e.Metric)
		}
	}
	var ms []string
	for _, m := range metrics {
		ms = append(ms, fmt.Sprintf("%s %.3g×", m, margin(p, gate, m)))
	}
	return "canary/stable ratio: fails on evidence above 1×; passes on evidence below the margin (" + strings.Join(ms, ", ") + ")"
}
