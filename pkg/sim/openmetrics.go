package sim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/canarybot/canarybot/pkg/signals"
)

// MetricNames are the series WriteOpenMetrics writes, by signal, as a
// signals preset reads them; an empty name is not written.
type MetricNames struct {
	// Requests is a counter. When it is Latency+"_count" it is written as
	// the latency histogram's count.
	Requests string
	// Errors and Predictions are counters (Predictions by a "class"
	// label). A counter named …_total is written as an OpenMetrics counter,
	// any other as an untyped series.
	Errors, Predictions string
	// Latency and TTFT name histograms: …_bucket{le} and …_count series.
	Latency, TTFT string
	// KVCache and QueueDepth are gauges.
	KVCache, QueueDepth string
	// GPU writes each side's GPU as canarybot gpu-agent exports it
	// (canarybot_gpu_*): memory, temperature, Xid counters, and the side's
	// pod (PodName) running on it.
	GPU bool
	// Status, when its Name is set, counts every answer by status class,
	// as the presets' error selectors read them.
	Status StatusCounter
	// Feedback and FeedbackCorrect are counters of labels as they arrive
	// and of those that say the answer was correct (feedback.go), written
	// for the runs whose scenario sets feedback.
	Feedback, FeedbackCorrect string
}

// StatusCounter is a counter of answers by status class, such as vLLM's
// OpenAI server's http_requests_total{status} or Knative's queue-proxy's
// revision_app_request_count{response_code_class}: the series with
// Label=Error counts the failed requests, the one with Label=OK the rest.
type StatusCounter struct {
	Name, Label, Error, OK string
}

// ExportRun is one world to write, and the labels of each side's series
// (indexed by signals.Side). Series of runs with different labels may
// share one TSDB.
type ExportRun struct {
	World  *World
	Labels [2]map[string]string
}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// WriteOpenMetrics writes the generated seconds of runs as OpenMetrics
// text with explicit timestamps, for `promtool tsdb create-blocks-from
// openmetrics`: what a 1s scrape of both sides would have stored.
//
// Counters and histogram buckets are the world's cumulative values at
// every second boundary, from the second the side first reported them
// (value 0 then); buckets are cumulative over le too. A gauge is sampled
// at the end of each second in which the side had it. No sample is
// written between two seconds of a metrics outage (see scraped). Each family is
// written once, each series in time order, and the text ends in # EOF.
func WriteOpenMetrics(out io.Writer, names MetricNames, runs ...ExportRun) error {
	o := &omWriter{bw: bufio.NewWriterSize(out, 1<<16)}
	if err := o.prepare(names, runs); err != nil {
		return fmt.Errorf("write openmetrics: %w", err)
	}
	for _, r := range runs {
		r.World.mu.Lock()
	}
	defer func() {
		for _, r := range runs {
			r.World.mu.Unlock()
		}
	}()
	o.families(names)
	if _, err := o.bw.WriteString("# EOF\n"); err != nil {
		return fmt.Errorf("write openmetrics: %w", err)
	}
	if err := o.bw.Flush(); err != nil {
		return fmt.Errorf("write openmetrics: %w", err)
	}
	return nil
}

// omWriter renders series line by line into a buffered writer. Write
// errors stick in the bufio.Writer and surface at Flush.
type omWriter struct {
	bw   *bufio.Writer
	runs []omRun
	line []byte
}

// omRun is a run with its label sets rendered: `k="v",…`.
type omRun struct {
	w      *World
	labels [2]string
}

// prepare checks the names and renders each run's labels.
func (o *omWriter) prepare(names MetricNames, runs []ExportRun) error {
	var errs []error
	for _, n := range []string{names.Requests, names.Errors, names.Predictions, names.Latency, names.TTFT, names.KVCache,
		names.QueueDepth, names.Status.Name, names.Feedback, names.FeedbackCorrect} {
		if n != "" && !metricNameRE.MatchString(n) {
			errs = append(errs, fmt.Errorf("invalid metric name %q", n))
		}
	}
	if st := names.Status; st.Name != "" && (!labelNameRE.MatchString(st.Label) || st.Label == "le" || st.Label == "class") {
		errs = append(errs, fmt.Errorf("invalid status label name %q", st.Label))
	}
	for i, r := range runs {
		if r.World == nil {
			errs = append(errs, fmt.Errorf("run %d: no world", i))
			continue
		}
		or := omRun{w: r.World}
		for side, ls := range r.Labels {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(ls)) {
				if !labelNameRE.MatchString(k) || k == "le" || k == "class" || strings.HasPrefix(k, "__") {
					errs = append(errs, fmt.Errorf("run %d: invalid or reserved label name %q", i, k))
				}
				parts = append(parts, k+`="`+escapeLabel(ls[k])+`"`)
			}
			or.labels[side] = strings.Join(parts, ",")
		}
		if r.World.epoch.UnixMilli() < 0 {
			errs = append(errs, fmt.Errorf("run %d: epoch %s is before 1970", i, r.World.epoch))
		}
		o.runs = append(o.runs, or)
	}
	return errors.Join(errs...)
}

func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// families writes every named family.
func (o *omWriter) families(names MetricNames) {
	countIsRequests := names.Latency != "" && names.Requests == names.Latency+"_count"
	if names.Latency != "" {
		o.histogram(names.Latency, histAccess{
			cum:    func(c *cumSeries) []float64 { return c.latency },
			bounds: func(w *World) []float64 { return w.latBounds },
			from:   func(s *sideState) int { return s.latFrom },
		}, countIsRequests)
	}
	if names.TTFT != "" {
		o.histogram(names.TTFT, histAccess{
			cum:    func(c *cumSeries) []float64 { return c.ttft },
			bounds: func(w *World) []float64 { return w.ttftBounds },
			from:   func(s *sideState) int { return s.ttftFrom },
		}, false)
	}
	if names.Requests != "" && !countIsRequests {
		o.counter(names.Requests, func(c *cumSeries) []float64 { return c.requests })
	}
	if names.Errors != "" {
		o.counter(names.Errors, func(c *cumSeries) []float64 { return c.errors })
	}
	if names.Predictions != "" {
		o.predictions(names.Predictions)
	}
	if names.Status.Name != "" {
		o.status(names.Status)
	}
	if names.Feedback != "" {
		o.labelCounter(names.Feedback, func(l *labels) []float64 { return l.cumArrive })
	}
	if names.FeedbackCorrect != "" {
		o.labelCounter(names.FeedbackCorrect, func(l *labels) []float64 { return l.cumCorrect })
	}
	if names.KVCache != "" {
		o.gauge(names.KVCache, func(g *gaugeSeries) []float64 { return g.kv })
	}
	if names.QueueDepth != "" {
		o.gauge(names.QueueDepth, func(g *gaugeSeries) []float64 { return g.queue })
	}
	if names.GPU {
		o.gpu()
	}
}

// typeLine writes a family's TYPE line: counters are named by their
// family, without _total; other names are untyped.
func (o *omWriter) typeLine(name, typ string) {
	if typ == "counter" {
		if fam, ok := strings.CutSuffix(name, "_total"); ok {
			fmt.Fprintf(o.bw, "# TYPE %s counter\n", fam)
			return
		}
		typ = "unknown"
	}
	fmt.Fprintf(o.bw, "# TYPE %s %s\n", name, typ)
}

// sideFrom is the first second a side reports counters: stable's first,
// the canary's first traffic; -1 when never.
func sideFrom(w *World, side int) int {
	switch {
	case w.now == 0:
		return -1
	case side == int(signals.Canary):
		return w.canaryStart
	}
	return 0
}

// scraped reports whether the sample at second boundary j exists: not
// between two seconds in a metrics outage. The scrapes at an outage's
// edges succeed, so that Prometheus holds exactly the increments of every
// interval the world serves (an interval with no second in an outage),
// and nothing for an interval inside one. An interval that overlaps an
// outage only in part, which the world calls NoData, Prometheus
// extrapolates from the samples at its side of the edge.
func scraped(w *World, j int) bool { return !w.unavailable(j-1) || !w.unavailable(j) }

// unavailable reports whether second k was generated in a metrics outage.
func (w *World) unavailable(k int) bool {
	return k >= 0 && k < w.now && w.unavail[k+1] != w.unavail[k]
}

func (o *omWriter) counter(name string, cum func(*cumSeries) []float64) {
	o.typeLine(name, "counter")
	for _, r := range o.runs {
		for side := range r.w.cum {
			from := sideFrom(r.w, side)
			if from < 0 {
				continue
			}
			vals := cum(r.w.cum[side])
			for j := from; j <= r.w.now; j++ {
				if scraped(r.w, j) {
					o.sample(name, r.labels[side], "", "", vals[j], r.w, j)
				}
			}
		}
	}
}

// labelCounter writes a feedback counter of the runs whose sides have
// labels, from the second each side first reports counters.
func (o *omWriter) labelCounter(name string, cum func(*labels) []float64) {
	o.typeLine(name, "counter")
	for _, r := range o.runs {
		for side, l := range r.w.labels {
			from := sideFrom(r.w, side)
			if l == nil || from < 0 {
				continue
			}
			vals := cum(l)
			for j := from; j <= r.w.now; j++ {
				if scraped(r.w, j) {
					o.sample(name, r.labels[side], "", "", vals[j], r.w, j)
				}
			}
		}
	}
}

// status writes the answers of each side by status class: the errors
// under st.Error, the other requests under st.OK.
func (o *omWriter) status(st StatusCounter) {
	o.typeLine(st.Name, "counter")
	for _, r := range o.runs {
		for side := range r.w.cum {
			from := sideFrom(r.w, side)
			if from < 0 {
				continue
			}
			c := r.w.cum[side]
			for _, class := range [2]string{st.Error, st.OK} {
				for j := from; j <= r.w.now; j++ {
					if !scraped(r.w, j) {
						continue
					}
					v := c.errors[j]
					if class == st.OK {
						v = c.requests[j] - c.errors[j]
					}
					o.sample(st.Name, r.labels[side], st.Label, class, v, r.w, j)
				}
			}
		}
	}
}

// histAccess reads one histogram of a world.
type histAccess struct {
	cum    func(*cumSeries) []float64
	bounds func(*World) []float64
	from   func(*sideState) int
}

// histogram writes …_bucket series, cumulative over le, from the second
// the side first reported the histogram, and …_count: the side's requests
// from its first second when countIsRequests, else the +Inf bucket.
func (o *omWriter) histogram(name string, h histAccess, countIsRequests bool) {
	o.typeLine(name, "histogram")
	for _, r := range o.runs {
		w := r.w
		bounds := h.bounds(w)
		les := make([]string, len(bounds)+1)
		for i, b := range bounds {
			les[i] = strconv.FormatFloat(b, 'g', -1, 64)
		}
		les[len(bounds)] = "+Inf"
		for side := range w.cum {
			hFrom, cFrom := h.from(w.sides[side]), sideFrom(w, side)
			if !countIsRequests {
				cFrom = hFrom
			}
			if hFrom < 0 && cFrom < 0 {
				continue
			}
			start := hFrom
			if start < 0 || (cFrom >= 0 && cFrom < start) {
				start = cFrom
			}
			vals, width := h.cum(w.cum[side]), len(les)
			for j := start; j <= w.now; j++ {
				if !scraped(w, j) {
					continue
				}
				acc := 0.0
				if hFrom >= 0 && j >= hFrom {
					for i, le := range les {
						acc += vals[j*width+i]
						o.sample(name+"_bucket", r.labels[side], "le", le, acc, w, j)
					}
				}
				if cFrom >= 0 && j >= cFrom {
					count := acc
					if countIsRequests {
						count = w.cum[side].requests[j]
					}
					o.sample(name+"_count", r.labels[side], "", "", count, w, j)
				}
			}
		}
	}
}

func (o *omWriter) predictions(name string) {
	o.typeLine(name, "counter")
	for _, r := range o.runs {
		w := r.w
		for side := range w.cum {
			from := w.sides[side].predFrom
			if from < 0 || w.nClasses == 0 {
				continue
			}
			vals := w.cum[side].pred
			for c := range w.nClasses {
				class := strconv.Itoa(c)
				for j := from; j <= w.now; j++ {
					if scraped(w, j) {
						o.sample(name, r.labels[side], "class", class, vals[j*w.nClasses+c], w, j)
					}
				}
			}
		}
	}
}

// gauge writes second k's gauge at its end, k+1, where it is a number.
func (o *omWriter) gauge(name string, vals func(*gaugeSeries) []float64) {
	o.typeLine(name, "gauge")
	for _, r := range o.runs {
		for side := range r.w.gauges {
			for k, v := range vals(r.w.gauges[side]) {
				if !math.IsNaN(v) && scraped(r.w, k+1) {
					o.sample(name, r.labels[side], "", "", v, r.w, k+1)
				}
			}
		}
	}
}

// sample writes `name{labels[,extraK="extraV"]} value timestamp`, the
// timestamp in seconds with millisecond precision.
func (o *omWriter) sample(name, labels, extraK, extraV string, v float64, w *World, j int) {
	b := append(o.line[:0], name...)
	b = append(b, '{')
	b = append(b, labels...)
	if extraK != "" {
		if labels != "" {
			b = append(b, ',')
		}
		b = append(b, extraK...)
		b = append(b, `="`...)
		b = append(b, extraV...)
		b = append(b, '"')
	}
	b = append(b, "} "...)
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	ms := w.timeAt(j).UnixMilli()
	b = append(b, ' ')
	b = strconv.AppendInt(b, ms/1000, 10)
	b = append(b, '.')
	frac := ms % 1000
	b = append(b, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	b = append(b, '\n')
	o.line = b
	_, _ = o.bw.Write(b)
}
