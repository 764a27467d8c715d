package benchfleet

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// The targets: issue 13's for 1,000 plans on two cores, and the big
// repository's for one canary step.
const (
	TargetP99Push = 5 * time.Second
	TargetRSSKiB  = 1 << 20
	TargetStepP50 = 500 * time.Millisecond
	TargetStepP99 = time.Second
	targetAll     = "all"
)

// section prints one section of the report: each measure beside its
// target with PASS or MISS, and remembers whether every target was met.
type section struct {
	w          io.Writer
	ok, header bool
}

func newSection(w io.Writer, format string, args ...any) *section {
	fmt.Fprintf(w, "\n"+format+"\n", args...)
	return &section{w: w, ok: true}
}

// row prints a row of the table, under its header.
func (s *section) row(measure, value, target, verdict string) {
	if !s.header {
		s.header = true
		s.row("measure", "value", "target", "")
	}
	line := fmt.Sprintf("  %-52s %20s   %-26s %s", measure, value, target, verdict)
	fmt.Fprintln(s.w, strings.TrimRight(line, " "))
}

// check prints a measure with its target.
func (s *section) check(measure, value, target string, met bool) {
	verdict := "PASS"
	if !met {
		verdict, s.ok = "MISS", false
	}
	s.row(measure, value, target, verdict)
}

// info prints a measure that has no target.
func (s *section) info(measure, value string) {
	s.row(measure, value, "", "")
}

// note prints a free line under the table.
func (s *section) note(format string, args ...any) {
	fmt.Fprintf(s.w, "  "+format+"\n", args...)
}

// countRows prints the promoted plans and the transition count.
func (s *section) countRows(promotedPlans, plans int, c Count, want int) {
	s.check("plans promoted", fmt.Sprintf("%d/%d", promotedPlans, plans), targetAll, promotedPlans == plans)
	s.check("transition commits (trailers counted)", fmt.Sprint(c.Transitions), fmt.Sprintf("%d, each once", want), c.Once(want))
	for _, d := range c.Duplicates {
		s.note("duplicate transition: %s", d)
	}
}

// auditRows prints what the server saw: no update rewound the branch.
func (s *section) auditRows(a *audit) {
	if a == nil {
		return
	}
	s.check("branch updates that were not fast-forwards (reflog)", fmt.Sprintf("%d of %d", len(a.Rewinds), a.Updates), "0", len(a.Rewinds) == 0)
	s.check("non-fast-forward pushes refused by the hook", fmt.Sprint(len(a.Refused)), "0", len(a.Refused) == 0)
	s.check("receive.denyNonFastForwards on the remote", fmt.Sprint(a.DenyNonFastForwards), "true", a.DenyNonFastForwards)
	for _, r := range a.Rewinds {
		s.note("rewound: %s", r)
	}
}

// Report prints the fleet section and returns whether every target was
// met.
func Report(w io.Writer, cfg Config, r *Result) bool {
	want := cfg.Plans * (cfg.Steps + 1)
	lat := slices.Clone(r.Latencies)
	slices.Sort(lat)
	p99 := pct(lat, 0.99)
	s := newSection(w, "fleet: %d plans × %d steps in one repository over git http-backend, %d workers, %s",
		cfg.Plans, cfg.Steps, cfg.Workers, r.Elapsed.Round(time.Millisecond))
	s.countRows(r.Promoted, r.Plans, r.Count, want)
	s.auditRows(r.Audit)
	s.info("decision → commit pushed, p50", ms(pct(lat, 0.50)))
	s.check("decision → commit pushed, p99", ms(p99), "≤ "+TargetP99Push.String(), len(lat) > 0 && p99 <= TargetP99Push)
	s.check("peak RSS", mib(r.PeakRSSKiB), fmt.Sprintf("≤ %s", mib(TargetRSSKiB)), r.PeakRSSKiB > 0 && r.PeakRSSKiB <= TargetRSSKiB)
	if r.Elapsed > 0 {
		s.info("transitions committed per second", fmt.Sprintf("%.1f", float64(r.Transitions)/r.Elapsed.Seconds()))
	}
	s.info("pushes (several transitions share one)", fmt.Sprint(r.Pushes))
	if c := r.Costs(); c.Transitions > 0 {
		s.info("pushes per transition", fmt.Sprintf("%.3f", c.PushesPerTransition))
		s.info("canarybot CPU per transition", ms(c.CPUPerTransition))
		s.info("git http-backend CPU per transition (server)", ms(c.ServerCPUPerTransition))
		s.info("RSS per plan ((peak − before) / plans)", fmt.Sprintf("%d KiB", c.RSSPerPlanKiB))
	}
	return s.ok
}

// pct is the q-quantile of sorted durations (nearest rank).
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// quantiles sorts a copy of d and returns its p50 and p99.
func quantiles(d []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	return pct(s, 0.50), pct(s, 0.99)
}

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(time.Millisecond).String()
}

func mib(kib int64) string { return fmt.Sprintf("%d MiB", kib/1024) }
