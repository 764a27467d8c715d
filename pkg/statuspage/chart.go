package statuspage

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Chart geometry, in SVG user units.
const (
	chartWidth  = 720
	panelHeight = 220
	chartTop    = 56 // title and legend
	plotLeft    = 64
	plotRight   = 24
	plotTop     = 28 // metric name
	plotBottom  = 40 // x labels
)

// chartView is a judge chart laid out for the SVG template.
type chartView struct {
	ID, Title, Desc string
	Width, Height   int
	Panels          []panelView
}

// panelView is one metric's panel.
type panelView struct {
	Metric, Heading string
	Top, HeadingY   float64
	X, Y, W, H      float64
	// Right and Bottom are the plot's edges; LabelY is the x labels' line.
	Right, Bottom, LabelY float64
	YTicks, XTicks        []tick
	OneY, MarginY         float64
	MarginLabel           string
	Band, Line            string
	Points                []pointView
	Empty                 bool
}

type tick struct {
	At    float64
	Label string
	// Anchor keeps a label at the plot's edges inside the chart.
	Anchor string
}

type pointView struct {
	X, Y, YLo, YHi float64
	Worse          bool
	Unbounded      bool
	Label          string
	// MarkDX and MarkAnchor place the "worse" mark's word beside it.
	MarkDX     float64
	MarkAnchor string
}

// layoutChart lays c out: per metric, the canary/stable ratio on a log
// scale against time since the rollout started, the estimate with its
// confidence band, the no-difference line at 1× (stable) and the margin.
func layoutChart(c JudgeChart, plan string, start time.Time) chartView {
	v := chartView{ID: "judge-" + safeID(plan+"-"+c.Gate), Width: chartWidth,
		Title: fmt.Sprintf("Judge gate %s of %s: canary vs stable", c.Gate, plan)}
	v.Desc = "For each metric, the ratio of the canary's event rate to stable's, estimated at each transition, " +
		"with its confidence band. Stable is the line at 1×; evidence above it fails the canary, " +
		"evidence below the dashed margin line passes it."
	if len(c.Metrics) == 0 {
		v.Desc = "No judge result has concluded yet in this rollout."
	}
	for i, s := range c.Metrics {
		v.Panels = append(v.Panels, layoutPanel(s, float64(chartTop+i*panelHeight), start))
	}
	v.Height = chartTop + max(len(c.Metrics), 1)*panelHeight
	return v
}

func layoutPanel(s JudgeSeries, top float64, start time.Time) panelView {
	p := panelView{Metric: s.Metric, Top: top, X: plotLeft, Y: top + plotTop, W: chartWidth - plotLeft - plotRight,
		H: panelHeight - plotTop - plotBottom, Heading: fmt.Sprintf("%s: canary/stable ratio (margin %.3g×)", s.Metric, s.Margin)}
	p.HeadingY, p.Right, p.Bottom, p.LabelY = top+18, p.X+p.W, p.Y+p.H, p.Y+p.H+18
	lo, hi := yRange(s)
	y := func(r float64) float64 {
		r = math.Min(math.Max(r, lo), hi)
		return p.Y + p.H*(1-(math.Log(r)-math.Log(lo))/(math.Log(hi)-math.Log(lo)))
	}
	for _, r := range []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50} {
		if r >= lo && r <= hi {
			p.YTicks = append(p.YTicks, tick{At: y(r), Label: fmt.Sprintf("%g×", r)})
		}
	}
	p.OneY, p.MarginY = y(1), y(s.Margin)
	p.MarginLabel = fmt.Sprintf("margin %.3g×", s.Margin)
	if len(s.Points) == 0 {
		p.Empty = true
		return p
	}
	if start.IsZero() || start.After(s.Points[0].At) {
		start = s.Points[0].At
	}
	span := s.Points[len(s.Points)-1].At.Sub(start)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return p.X + p.W/2
		}
		return p.X + 12 + (p.W-24)*float64(t.Sub(start))/float64(span)
	}
	var upper, lower, line []string
	for _, pt := range s.Points {
		high := pt.High
		if pt.Unbounded {
			high = hi
		}
		pv := pointView{X: x(pt.At), Y: y(pt.Estimate), YLo: y(math.Max(pt.Low, lo)), YHi: y(high), Worse: pt.Worse,
			Unbounded: pt.Unbounded, Label: pointLabel(s.Metric, pt), MarkDX: 9, MarkAnchor: "start"}
		if pv.X > p.Right-60 {
			pv.MarkDX, pv.MarkAnchor = -9, "end"
		}
		p.Points = append(p.Points, pv)
		upper = append(upper, fmt.Sprintf("%.1f,%.1f", pv.X, pv.YHi))
		lower = append([]string{fmt.Sprintf("%.1f,%.1f", pv.X, pv.YLo)}, lower...)
		line = append(line, fmt.Sprintf("%.1f,%.1f", pv.X, pv.Y))
		p.XTicks = append(p.XTicks, tick{At: pv.X, Label: fmt.Sprintf("step %d · +%s", pt.Step, shortDuration(pt.At.Sub(start)))})
	}
	if len(s.Points) > 1 {
		p.Band = strings.Join(append(upper, lower...), " ")
		p.Line = strings.Join(line, " ")
	}
	p.XTicks = arrangeXTicks(p.XTicks, p.X, p.Right)
	return p
}

// arrangeXTicks keeps the time labels apart (the first, the last and a few
// between), marks the rollout's start, and keeps the labels at the plot's
// edges inside the chart.
func arrangeXTicks(ticks []tick, left, right float64) []tick {
	if len(ticks) > 4 {
		keep := []tick{}
		for i, t := range ticks {
			if i == 0 || i == len(ticks)-1 || i%((len(ticks)+2)/3) == 0 {
				keep = append(keep, t)
			}
		}
		ticks = keep
	}
	if ticks[0].At > left+100 {
		ticks = append([]tick{{At: left + 4, Label: "rollout start"}}, ticks...)
	}
	for i := range ticks {
		switch t := &ticks[i]; {
		case t.At < left+60:
			t.Anchor = "start"
		case t.At > right-60:
			t.Anchor = "end"
		default:
			t.Anchor = "middle"
		}
	}
	return ticks
}

// yRange is the ratio axis: every estimate, bound, 1× and the margin,
// within 0.05× to 50×.
func yRange(s JudgeSeries) (lo, hi float64) {
	lo, hi = math.Min(0.5, 1/s.Margin), math.Max(2, s.Margin*1.5)
	for _, p := range s.Points {
		for _, r := range []float64{p.Estimate, p.Low, p.High} {
			if r > 0 && !math.IsInf(r, 0) {
				lo, hi = math.Min(lo, r/1.3), math.Max(hi, r*1.3)
			}
		}
	}
	return math.Max(lo, 0.05), math.Min(hi, 50)
}

func pointLabel(metric string, p JudgePoint) string {
	high := fmt.Sprintf("%.2f", p.High)
	if p.Unbounded {
		high = "∞"
	}
	verdict := "no evidence of harm"
	if p.Worse {
		verdict = "canary worse"
	}
	return fmt.Sprintf("%s at step %d (%s): %.2f× [%.2f, %s] over %.0f canary / %.0f stable requests: %s",
		metric, p.Step, p.At.UTC().Format("15:04:05Z"), p.Estimate, p.Low, high, p.CanaryRequests, p.StableRequests, verdict)
}

func shortDuration(d time.Duration) string {
	switch d = d.Round(time.Second); {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%.1fh", d.Hours())
}

// safeID keeps letters, digits and dashes.
func safeID(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
}
