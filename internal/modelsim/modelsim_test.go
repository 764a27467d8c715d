package modelsim

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// fast is a behaviour with sub-millisecond latencies.
func fast() Behaviour {
	return Behaviour{
		ErrorRate:     0,
		LatencyMedian: 200 * time.Microsecond,
		LatencySigma:  0.2,
		TTFTMedian:    50 * time.Microsecond,
		TTFTSigma:     0.2,
		KVCacheUsage:  0.4,
		QueueDepth:    2,
	}
}

func startServer(t *testing.T, role Role, version string, b Behaviour, seed uint64) *Server {
	t.Helper()
	s, err := NewServer(ServerConfig{
		ModelName: "demo-llm", Version: version, Role: role, Behaviour: b,
		Rand: rand.New(rand.NewPCG(seed, seed)),
	})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.Start(ctx, ""); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func post(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"hi"}`))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	_ = resp.Body.Close()
	return resp
}

// scrape parses a server's /metrics.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// series returns the family's metric whose labels include want, or nil.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	for _, m := range fams[name].GetMetric() {
		got := labelMap(m)
		match := true
		for k, v := range want {
			match = match && got[k] == v
		}
		if match {
			return m
		}
	}
	return nil
}

func TestMetricsExposeVLLMNamesAndLabels(t *testing.T) {
	s := startServer(t, RoleCanary, "v2", fast(), 1)
	const n = 20
	for range n {
		if resp := post(t, s.URL()); resp.StatusCode != http.StatusOK ||
			resp.Header.Get(HeaderVersion) != "v2" || resp.Header.Get(HeaderRole) != "canary" {
			t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
		}
	}
	fams := scrape(t, s.URL())
	want := map[string]string{LabelModelName: "demo-llm", LabelVersion: "v2", LabelRole: "canary"}
	names := []string{MetricE2ELatency, MetricTTFT, MetricSuccess, MetricErrors,
		MetricKVCacheUsage, MetricWaiting, MetricRunning, MetricHTTPRequests}
	for _, name := range names {
		if fams[name] == nil {
			t.Fatalf("/metrics lacks %s; has %v", name, keys(fams))
		}
		for _, m := range fams[name].GetMetric() {
			got := labelMap(m)
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s series %v: label %s = %q, want %q", name, got, k, got[k], v)
				}
			}
		}
	}
	if c := series(fams, MetricE2ELatency, want).GetHistogram().GetSampleCount(); c != n {
		t.Errorf("e2e sample count = %d, want %d", c, n)
	}
	if c := series(fams, MetricTTFT, want).GetHistogram().GetSampleCount(); c != n {
		t.Errorf("ttft sample count = %d, want %d", c, n)
	}
	if v := series(fams, MetricSuccess, want).GetCounter().GetValue(); v != n {
		t.Errorf("success = %v, want %d", v, n)
	}
	if m := series(fams, MetricErrors, want); m == nil || m.GetCounter().GetValue() != 0 {
		t.Errorf("errors series = %v, want present at 0", m)
	}
	if v := series(fams, MetricKVCacheUsage, want).GetGauge().GetValue(); v != 0.4 {
		t.Errorf("kv cache = %v, want 0.4", v)
	}
	if v := series(fams, MetricWaiting, want).GetGauge().GetValue(); v != 2 {
		t.Errorf("waiting = %v, want 2", v)
	}
	if fams[MetricE2ELatency].GetType() != dto.MetricType_HISTOGRAM ||
		fams[MetricSuccess].GetType() != dto.MetricType_COUNTER ||
		fams[MetricKVCacheUsage].GetType() != dto.MetricType_GAUGE {
		t.Error("metric types differ from vLLM's")
	}
	var bounds []float64
	for _, b := range series(fams, MetricE2ELatency, want).GetHistogram().GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	for _, b := range []float64{0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60} {
		if i := sort.SearchFloat64s(bounds, b); i == len(bounds) || bounds[i] != b {
			t.Errorf("e2e histogram lacks vLLM bucket %v", b)
		}
	}
}

func keys(m map[string]*dto.MetricFamily) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestErrorRateOneAnswers500(t *testing.T) {
	b := fast()
	b.ErrorRate = 1
	s := startServer(t, RoleCanary, "v3", b, 2)
	const n = 10
	for range n {
		if resp := post(t, s.URL()); resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500", resp.StatusCode)
		}
	}
	fams := scrape(t, s.URL())
	want := map[string]string{LabelVersion: "v3", LabelRole: "canary"}
	if v := series(fams, MetricErrors, want).GetCounter().GetValue(); v != n {
		t.Errorf("errors = %v, want %d", v, n)
	}
	if v := series(fams, MetricSuccess, want).GetCounter().GetValue(); v != 0 {
		t.Errorf("success = %v, want 0", v)
	}
	// vLLM's OpenAI server counts answers by status class.
	for status, wantN := range map[string]float64{"5xx": n, "2xx": 0} {
		sel := map[string]string{LabelRole: "canary", "handler": "/v1/completions", "method": "POST", "status": status}
		if v := series(fams, MetricHTTPRequests, sel).GetCounter().GetValue(); v != wantN {
			t.Errorf("http_requests_total{status=%q} = %v, want %v", status, v, wantN)
		}
	}
}

func TestDeployReplacesVersionSeries(t *testing.T) {
	s := startServer(t, RoleCanary, "v1", fast(), 3)
	post(t, s.URL())
	b := fast()
	b.KVCacheUsage = 0.9
	if err := s.Deploy("v2", b); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, s.URL())
	if m := series(fams, MetricSuccess, map[string]string{LabelVersion: "v1"}); m != nil {
		t.Errorf("v1 series survived the deploy: %v", m)
	}
	v2 := map[string]string{LabelVersion: "v2"}
	if m := series(fams, MetricSuccess, v2); m == nil || m.GetCounter().GetValue() != 0 {
		t.Errorf("v2 success series = %v, want present at 0", m)
	}
	if v := series(fams, MetricKVCacheUsage, v2).GetGauge().GetValue(); v != 0.9 {
		t.Errorf("kv cache = %v, want 0.9", v)
	}
	if s.Version() != "v2" || s.Behaviour().KVCacheUsage != 0.9 {
		t.Errorf("Version %q, Behaviour %+v", s.Version(), s.Behaviour())
	}
}

func TestSetBehaviourValidates(t *testing.T) {
	s := startServer(t, RoleStable, "v1", fast(), 4)
	for _, b := range []Behaviour{
		{ErrorRate: 1.5},
		{ErrorRate: -0.1},
		{KVCacheUsage: 2},
		{LatencySigma: -1},
		{LatencyMedian: -time.Second},
		{LatencyMixture: []LatencyComponent{{Weight: 0}}},
		{PredictionClasses: []float64{0, 0}},
	} {
		if err := s.SetBehaviour(b); err == nil {
			t.Errorf("SetBehaviour(%+v) accepted", b)
		}
	}
}
