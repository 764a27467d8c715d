package sim

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/signals"
)

// exportScenario has every exported signal on both sides, and a metrics
// outage of 5 seconds from 10s after the canary's first traffic.
const exportScenario = `
name: export
traffic: {rps: 50, maxDuration: 10m}
stable:
  errorRate: 0.05
  latency: {medianSeconds: 0.3, sigma: 0.5}
  ttft: {medianSeconds: 0.05, sigma: 0.4}
  kvCacheUsage: 0.4
  queueDepth: 2
  predictions: {classes: [0.7, 0.3]}
canary: {kvCacheUsage: 0.5, kvCacheGrowthPerMinute: 0.06}
changes:
- {at: 10s, for: 5s, target: metrics, set: {available: false}}
expect: promote
`

var vllmNames = MetricNames{
	Requests: "vllm:e2e_request_latency_seconds_count", Errors: "canarybot_sim:request_errors_total",
	Predictions: "canarybot_sim:predictions_total", Latency: "vllm:e2e_request_latency_seconds",
	TTFT: "vllm:time_to_first_token_seconds", KVCache: "vllm:gpu_cache_usage_perc", QueueDepth: "vllm:num_requests_waiting",
}

// omSample is one parsed sample line.
type omSample struct {
	name, labels string
	value        float64
	ts           float64
}

// parseOpenMetrics checks the structure promtool's parser relies on and
// returns the samples by series (name+labels), in file order: one TYPE
// line per family, before its samples; sample names of that family; a
// final # EOF.
func parseOpenMetrics(t *testing.T, text string) map[string][]omSample {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if lines[len(lines)-1] != "# EOF" {
		t.Fatalf("last line %q, want # EOF", lines[len(lines)-1])
	}
	families := map[string]bool{}
	var fam, typ string
	series := map[string][]omSample{}
	for n, line := range lines[:len(lines)-1] {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			fam, typ, _ = strings.Cut(f, " ")
			if families[fam] {
				t.Fatalf("line %d: family %s typed twice", n+1, fam)
			}
			families[fam] = true
			continue
		}
		if strings.HasPrefix(line, "#") {
			t.Fatalf("line %d: unexpected %q", n+1, line)
		}
		name, rest, _ := strings.Cut(line, "{")
		labels, rest, ok := strings.Cut(rest, "} ")
		fields := strings.Fields(rest)
		if !ok || len(fields) != 2 {
			t.Fatalf("line %d: %q is not name{labels} value timestamp", n+1, line)
		}
		suffix, ok := strings.CutPrefix(name, fam)
		allowed := map[string][]string{"counter": {"_total"}, "histogram": {"_bucket", "_count"}, "gauge": {""}}[typ]
		if !ok || !containsString(allowed, suffix) {
			t.Fatalf("line %d: sample %s in %s family %s", n+1, name, typ, fam)
		}
		v, err1 := strconv.ParseFloat(fields[0], 64)
		ts, err2 := strconv.ParseFloat(fields[1], 64)
		if err1 != nil || err2 != nil || !strings.Contains(fields[1], ".") || len(fields[1])-strings.Index(fields[1], ".") != 4 {
			t.Fatalf("line %d: bad value or timestamp (seconds with 3 decimals) in %q", n+1, line)
		}
		key := name + "{" + labels + "}"
		if prev := series[key]; len(prev) > 0 && prev[len(prev)-1].ts >= ts {
			t.Fatalf("line %d: timestamp %v not after %v in %s", n+1, ts, prev[len(prev)-1].ts, key)
		}
		series[key] = append(series[key], omSample{name: name, labels: labels, value: v, ts: ts})
	}
	return series
}

func containsString(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

func TestWriteOpenMetrics(t *testing.T) {
	w, canaryStart := startedWorld(t, mustScenario(t, exportScenario), 3, 20, 30, 50)
	labels := [2]map[string]string{{"role": "stable", "run": `a"b`}, {"role": "canary", "run": `a"b`}}
	var buf bytes.Buffer
	if err := WriteOpenMetrics(&buf, vllmNames, ExportRun{World: w, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	series := parseOpenMetrics(t, buf.String())
	unix := func(sec int) float64 { return float64(Epoch().Add(time.Duration(sec)*time.Second).UnixMilli()) / 1000 }
	cs := int(canaryStart.Sub(Epoch()) / time.Second)
	const st, ca = `{role="stable",run="a\"b"`, `{role="canary",run="a\"b"`
	canaryCount := series["vllm:e2e_request_latency_seconds_count"+ca+"}"]
	if len(canaryCount) == 0 {
		t.Fatalf("no canary request count among %d series", len(series))
	}
	if first := canaryCount[0]; first.ts != unix(cs) || first.value != 0 {
		t.Errorf("canary count starts at %v = %v, want 0 at the canary's first second %v", first.ts, first.value, unix(cs))
	}
	if last := canaryCount[len(canaryCount)-1]; last.ts != unix(50) || int64(last.value) != w.CanaryRequests() {
		t.Errorf("canary count ends at %v = %v, want %d at %v", last.ts, last.value, w.CanaryRequests(), unix(50))
	}
	// Stable counts at 0…50 and the canary's at 20…50, gauges at the ends
	// of seconds (1…50, 21…50), less the 4 boundaries between the outage's
	// 5 seconds.
	for key, want := range map[string]int{
		"vllm:e2e_request_latency_seconds_count" + st + "}":             51 - 4,
		"vllm:e2e_request_latency_seconds_bucket" + ca + `,le="+Inf"}`:  31 - 4,
		"vllm:time_to_first_token_seconds_bucket" + st + `,le="0.001"}`: 51 - 4,
		"canarybot_sim:request_errors_total" + ca + "}":                 31 - 4,
		"canarybot_sim:predictions_total" + st + `,class="1"}`:          51 - 4,
		"vllm:gpu_cache_usage_perc" + ca + "}":                          30 - 4,
		"vllm:num_requests_waiting" + st + "}":                          50 - 4,
	} {
		if got := len(series[key]); got != want {
			t.Errorf("%s: %d samples, want %d", key, got, want)
		}
	}
	for key, ss := range series {
		for _, s := range ss {
			if s.ts > unix(cs+10) && s.ts < unix(cs+15) {
				t.Errorf("%s: sample at %v, inside the metrics outage", key, s.ts)
			}
		}
	}
	checkHistograms(t, series)
	checkAgainstRead(t, w, series)
}

// checkHistograms checks that buckets are cumulative over le and that
// +Inf equals the count.
func checkHistograms(t *testing.T, series map[string][]omSample) {
	t.Helper()
	for _, fam := range []string{vllmNames.Latency, vllmNames.TTFT} {
		for _, side := range []string{"stable", "canary"} {
			count := series[fam+`_count{role="`+side+`",run="a\"b"}`]
			prev := make([]float64, len(count))
			for _, le := range append(boundsStrings(fam), "+Inf") {
				buckets := series[fam+`_bucket{role="`+side+`",run="a\"b",le="`+le+`"}`]
				if len(buckets) != len(count) {
					t.Fatalf("%s %s le=%s: %d samples, count has %d", fam, side, le, len(buckets), len(count))
				}
				for i, b := range buckets {
					if b.value < prev[i] || (le == "+Inf" && b.value != count[i].value) {
						t.Fatalf("%s %s at %v: bucket le=%s %v after %v, count %v", fam, side, b.ts, le, b.value, prev[i], count[i].value)
					}
					prev[i] = b.value
				}
			}
		}
	}
}

func boundsStrings(fam string) []string {
	bounds := signals.E2EBuckets()
	if fam == vllmNames.TTFT {
		bounds = signals.TTFTBuckets()
	}
	var out []string
	for _, b := range bounds {
		out = append(out, strconv.FormatFloat(b, 'g', -1, 64))
	}
	return out
}

// checkAgainstRead checks that every one-second increment of the exported
// counters, and every gauge sample, is what World.Read returns for that
// second: the signals the in-memory gates see.
func checkAgainstRead(t *testing.T, w *World, series map[string][]omSample) {
	t.Helper()
	s := read(t, w, Epoch(), w.Now(), time.Second)
	sum := func(xs []float64, n int) float64 { return signals.Sum(xs[:min(n, len(xs))]) }
	checks := []struct {
		name, extra string
		counter     bool
		want        func(iv *signals.Interval, side int) float64
	}{
		{vllmNames.Requests, "", true, func(iv *signals.Interval, side int) float64 { return iv.Requests[side] }},
		{vllmNames.Errors, "", true, func(iv *signals.Interval, side int) float64 { return iv.Errors[side] }},
		{vllmNames.Latency + "_bucket", `,le="0.3"`, true, func(iv *signals.Interval, side int) float64 { return sum(iv.Latency[side], 10) }},
		{vllmNames.TTFT + "_bucket", `,le="+Inf"`, true, func(iv *signals.Interval, side int) float64 { return sum(iv.TTFT[side], 99) }},
		{vllmNames.Predictions, `,class="1"`, true, func(iv *signals.Interval, side int) float64 { return iv.Predictions[side][1] }},
		{vllmNames.KVCache, "", false, func(iv *signals.Interval, side int) float64 { return iv.KVCache[side] }},
		{vllmNames.QueueDepth, "", false, func(iv *signals.Interval, side int) float64 { return iv.QueueDepth[side] }},
	}
	for _, c := range checks {
		for side, role := range []string{"stable", "canary"} {
			key := c.name + `{role="` + role + `",run="a\"b"` + c.extra + "}"
			ss, compared := series[key], 0
			for i, smp := range ss {
				sec := int(smp.ts - float64(Epoch().Unix()))
				if sec == 0 || s.Intervals[sec-1].NoData {
					continue
				}
				iv := &s.Intervals[sec-1]
				got := smp.value
				if c.counter {
					if i == 0 || ss[i-1].ts != smp.ts-1 {
						continue
					}
					got -= ss[i-1].value
				}
				if want := c.want(iv, side); got != want {
					t.Errorf("%s: %v in the second to %v, Read says %v", key, got, smp.ts, want)
				}
				compared++
			}
			if compared < 20 {
				t.Errorf("%s: only %d samples compared with Read", key, compared)
			}
		}
	}
}

func TestWriteOpenMetricsRefusesBadNames(t *testing.T) {
	w, _ := startedWorld(t, mustScenario(t, exportScenario), 1, 2, 2, 50)
	for name, tc := range map[string]struct {
		names  MetricNames
		labels map[string]string
		want   string
	}{
		"metric name":    {MetricNames{Requests: "bad-name"}, nil, `invalid metric name "bad-name"`},
		"reserved label": {vllmNames, map[string]string{"le": "1"}, `reserved label name "le"`},
		"label name":     {vllmNames, map[string]string{"a.b": "1"}, `label name "a.b"`},
	} {
		t.Run(name, func(t *testing.T) {
			err := WriteOpenMetrics(&bytes.Buffer{}, tc.names, ExportRun{World: w, Labels: [2]map[string]string{tc.labels, tc.labels}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("WriteOpenMetrics error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
