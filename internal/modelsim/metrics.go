package modelsim

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canarybot/canarybot/pkg/signals"
)

// Metric names. The vllm: ones are vLLM's own (v0 engine names), so that
// gates written for a real vLLM deployment run unchanged against the
// simulator.
//
// vLLM's engine has no counter of failed requests; its OpenAI server counts
// every answer in http_requests_total{handler,method,status}, by status
// class ("2xx", "5xx"), through prometheus-fastapi-instrumentator, and the
// simulator does too. It also counts failures in
// canarybot_sim:request_errors_total, and vllm:request_success_total
// counts the others, so an error ratio is
//
//	sum(rate(canarybot_sim:request_errors_total{role="canary"}[1m]))
//	  / (sum(rate(canarybot_sim:request_errors_total{role="canary"}[1m]))
//	   + sum(rate(vllm:request_success_total{role="canary"}[1m])))
//
// The e2e latency histogram observes every answered request, failed ones
// included; the TTFT histogram only successful ones.
const (
	MetricE2ELatency   = "vllm:e2e_request_latency_seconds"
	MetricTTFT         = "vllm:time_to_first_token_seconds"
	MetricTPOT         = "vllm:time_per_output_token_seconds"
	MetricSuccess      = "vllm:request_success_total"
	MetricErrors       = "canarybot_sim:request_errors_total"
	MetricKVCacheUsage = "vllm:gpu_cache_usage_perc"
	MetricWaiting      = "vllm:num_requests_waiting"
	MetricRunning      = "vllm:num_requests_running"
	MetricPredictions  = "canarybot_sim:predictions_total"
	MetricHTTPRequests = "http_requests_total"
)

// Labels every series carries.
const (
	LabelModelName = "model_name"
	LabelVersion   = "version"
	LabelRole      = "role"
)

const (
	labelFinishedReason = "finished_reason"
	labelHandler        = "handler"
	labelMethod         = "method"
	labelStatus         = "status"
	completionsHandler  = "/v1/completions"
	labelClass          = "class"
	finishedReasonStop  = "stop"
)

// OutputTokens is how many tokens every simulated answer has: TPOT is the
// time after the first token divided by the tokens after it.
const OutputTokens = 16

// metrics are one server's series. Every series carries model_name,
// version and role.
type metrics struct {
	e2e         *prometheus.HistogramVec
	ttft        *prometheus.HistogramVec
	tpot        *prometheus.HistogramVec
	success     *prometheus.CounterVec
	errors      *prometheus.CounterVec
	kvCache     *prometheus.GaugeVec
	waiting     *prometheus.GaugeVec
	running     *prometheus.GaugeVec
	predictions *prometheus.CounterVec
	http        *prometheus.CounterVec
}

// newMetrics registers the series with reg.
func newMetrics(reg prometheus.Registerer) *metrics {
	base := []string{LabelModelName, LabelVersion, LabelRole}
	with := func(extra string) []string { return append(append([]string(nil), base...), extra) }
	m := &metrics{
		e2e: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricE2ELatency, Help: "Histogram of end to end request latency in seconds.",
			Buckets: signals.E2EBuckets(),
		}, base),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricTTFT, Help: "Histogram of time to first token in seconds.",
			Buckets: signals.TTFTBuckets(),
		}, base),
		tpot: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricTPOT, Help: "Histogram of time per output token in seconds.",
			Buckets: signals.TPOTBuckets(),
		}, base),
		success: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricSuccess, Help: "Count of successfully processed requests.",
		}, with(labelFinishedReason)),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricErrors, Help: "Count of requests answered with a server error (simulator only; vLLM has no such counter).",
		}, base),
		kvCache: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricKVCacheUsage, Help: "GPU KV-cache usage. 1 means 100 percent usage.",
		}, base),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricWaiting, Help: "Number of requests waiting to be processed.",
		}, base),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricRunning, Help: "Number of requests currently running.",
		}, base),
		predictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricPredictions, Help: "Count of predictions by class index (simulator only).",
		}, with(labelClass)),
	}
	m.http = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricHTTPRequests, Help: "Total number of requests by method, status and handler.",
	}, append(append([]string(nil), base...), labelHandler, labelMethod, labelStatus))
	reg.MustRegister(m.e2e, m.ttft, m.tpot, m.success, m.errors, m.kvCache, m.waiting, m.running, m.predictions, m.http)
	return m
}

// labels identifies one server version's series.
type labels struct {
	model, version, role string
}

func (l labels) values(extra ...string) []string {
	return append([]string{l.model, l.version, l.role}, extra...)
}

// start creates l's series at zero, so that rate() and ratios see 0 rather
// than no data before the first error, and sets the gauges from b.
func (m *metrics) start(l labels, b Behaviour) {
	m.success.WithLabelValues(l.values(finishedReasonStop)...)
	m.errors.WithLabelValues(l.values()...)
	for _, st := range []string{"2xx", "5xx"} {
		m.http.WithLabelValues(l.values(completionsHandler, "POST", st)...)
	}
	m.running.WithLabelValues(l.values()...)
	for i := range b.PredictionClasses {
		m.predictions.WithLabelValues(l.values(strconv.Itoa(i))...)
	}
	m.setGauges(l, b)
}

// setGauges reports b's gauges.
func (m *metrics) setGauges(l labels, b Behaviour) {
	m.kvCache.WithLabelValues(l.values()...).Set(b.KVCacheUsage)
	m.waiting.WithLabelValues(l.values()...).Set(float64(b.QueueDepth))
}

// stop removes l's series, as a restarted pod's would vanish.
func (m *metrics) stop(l labels) {
	match := prometheus.Labels{LabelModelName: l.model, LabelVersion: l.version, LabelRole: l.role}
	m.e2e.DeletePartialMatch(match)
	m.ttft.DeletePartialMatch(match)
	m.tpot.DeletePartialMatch(match)
	m.success.DeletePartialMatch(match)
	m.errors.DeletePartialMatch(match)
	m.kvCache.DeletePartialMatch(match)
	m.waiting.DeletePartialMatch(match)
	m.running.DeletePartialMatch(match)
	m.predictions.DeletePartialMatch(match)
	m.http.DeletePartialMatch(match)
}

// record counts a finished request.
func (m *metrics) record(l labels, o Outcome) {
	m.e2e.WithLabelValues(l.values()...).Observe(o.Latency.Seconds())
	if o.Failed {
		m.errors.WithLabelValues(l.values()...).Inc()
		m.http.WithLabelValues(l.values(completionsHandler, "POST", "5xx")...).Inc()
		return
	}
	m.http.WithLabelValues(l.values(completionsHandler, "POST", "2xx")...).Inc()
	m.ttft.WithLabelValues(l.values()...).Observe(o.TTFT.Seconds())
	m.tpot.WithLabelValues(l.values()...).Observe((o.Latency - o.TTFT).Seconds() / (OutputTokens - 1))
	m.success.WithLabelValues(l.values(finishedReasonStop)...).Inc()
	if o.Class >= 0 {
		m.predictions.WithLabelValues(l.values(strconv.Itoa(o.Class))...).Inc()
	}
}
