package benchfleet

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// Targets are the goals issue 13 sets for 1,000 plans on two cores.
var Targets = struct {
	P99Push time.Duration
	RSSKiB  int64
}{P99Push: 5 * time.Second, RSSKiB: 1 << 20}

// Report prints the numbers beside their targets and returns whether
// every target was met.
func Report(w io.Writer, cfg Config, r *Result) bool {
	want := cfg.Plans * (cfg.Steps + 1)
	lat := slices.Clone(r.Latencies)
	slices.Sort(lat)
	p50, p99 := pct(lat, 0.50), pct(lat, 0.99)
	ok := true
	check := func(met bool) string {
		if met {
			return "ok"
		}
		ok = false
		return "MISSED"
	}
	fmt.Fprintf(w, "fleet: %d plans × %d steps in one repository over git http-backend, %d workers, %s\n",
		cfg.Plans, cfg.Steps, cfg.Workers, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  %-44s %12s   %-16s %s\n", "measure", "value", "target", "")
	fmt.Fprintf(w, "  %-44s %12s   %-16s %s\n", "plans promoted", fmt.Sprintf("%d/%d", r.Promoted, r.Plans), "all", check(r.Promoted == r.Plans))
	fmt.Fprintf(w, "  %-44s %12s   %-16s %s\n", "transition commits (trailers counted)", fmt.Sprint(r.Transitions),
		fmt.Sprintf("%d, each once", want), check(r.Transitions == want && r.Distinct == want && len(r.Duplicates) == 0))
	fmt.Fprintf(w, "  %-44s %12s   %-16s %s\n", "decision → commit pushed, p50", p50.Round(time.Millisecond), "", "")
	fmt.Fprintf(w, "  %-44s %12s   %-16s %s\n", "decision → commit pushed, p99", p99.Round(time.Millisecond),
		"≤ "+Targets.P99Push.String(), check(len(lat) > 0 && p99 <= Targets.P99Push))
	fmt.Fprintf(w, "  %-44s %12s   %-16s %s\n", "peak RSS", fmt.Sprintf("%d MiB", r.PeakRSSKiB/1024),
		fmt.Sprintf("≤ %d MiB", Targets.RSSKiB/1024), check(r.PeakRSSKiB > 0 && r.PeakRSSKiB <= Targets.RSSKiB))
	if r.Elapsed > 0 {
		fmt.Fprintf(w, "  %-44s %12.1f\n", "transitions committed per second", float64(r.Transitions)/r.Elapsed.Seconds())
	}
	fmt.Fprintf(w, "  %-44s %12d\n", "pushes (several transitions share one)", r.Pushes)
	for _, d := range r.Duplicates {
		fmt.Fprintf(w, "  duplicate transition: %s\n", d)
	}
	return ok
}

// pct is the q-quantile of sorted durations (nearest rank).
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
