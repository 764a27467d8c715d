//go:build cgo

package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/canarybot/canarybot/pkg/gpu"
	"github.com/canarybot/canarybot/pkg/gpu/gputest"
	"github.com/canarybot/canarybot/pkg/promserver"
)

const podUID = "1b2c3d4e-5f60-4718-92a3-b4c5d6e7f809"

// serve starts the agent's handler over a fresh registry on a real HTTP
// server.
func serve(t *testing.T, a *Agent) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := a.Register(reg); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a.Handler(reg))
	t.Cleanup(ts.Close)
	return ts
}

// get fetches path and returns the status and body.
func get(t *testing.T, method, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// promtoolCheck runs `promtool check metrics` over an exposition.
func promtoolCheck(t *testing.T, body []byte) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal(promserver.ErrPromtoolNotInstalled)
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n--- exposition:\n%s", err, out, body)
	}
}

// series parses an exposition into values keyed name{label="value",…},
// labels sorted by name.
func series(t *testing.T, body []byte) map[string]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			out[name+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

// busyNode is the DGX H100 mock with one throttled GPU, ECC errors on
// another, and a pod's process on a third, whose cgroup and pod log
// directory are in temp dirs.
func busyNode(t *testing.T) (*server.Server, []gpu.Option) {
	t.Helper()
	srv := gputest.HealthyServer()
	gputest.Device(srv, 1).GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
		return nvml.ClocksThrottleReasonHwSlowdown | nvml.ClocksEventReasonSwThermalSlowdown | 1<<12, nvml.SUCCESS
	}
	gputest.SetECC(gputest.Device(srv, 2), gputest.ECCCounts{UncorrectedVolatile: 1, UncorrectedAggregate: 3, CorrectedAggregate: 1234})
	gputest.Runs(gputest.Device(srv, 3),
		nvml.ProcessInfo{Pid: 4242, UsedGpuMemory: 30 << 30},
		nvml.ProcessInfo{Pid: 77, UsedGpuMemory: ^uint64(0)}) // memory not available: no series
	proc, pods := t.TempDir(), t.TempDir()
	cg := "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(podUID, "-", "_") + ".slice/cri-containerd-1.scope\n"
	if err := os.MkdirAll(filepath.Join(proc, "4242"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "4242", "cgroup"), []byte(cg), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(pods, "llm_qwen-canary-0_"+podUID), 0o755); err != nil {
		t.Fatal(err)
	}
	return srv, []gpu.Option{gpu.WithProcRoot(proc), gpu.WithPodsLogDir(pods)}
}

func TestMetricsExposition(t *testing.T) {
	srv, opts := busyNode(t)
	clk := newTestClock()
	a, _ := newTestAgent(t, srv, clk, Config{Node: "gpu-node-1"}, opts...)
	a.recordXid([]gpu.DeviceXid{
		{Index: 3, UUID: gputest.Device(srv, 3).UUID, XidEvent: gpu.XidEvent{Code: 79}},
		{Index: 3, UUID: gputest.Device(srv, 3).UUID, XidEvent: gpu.XidEvent{Code: 79}},
		{Index: 0, UUID: gputest.Device(srv, 0).UUID, XidEvent: gpu.XidEvent{Code: 48}},
	})
	ts := serve(t, a)

	resp, body := get(t, http.MethodGet, ts.URL+MetricsPath)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	promtoolCheck(t, body)
	got := series(t, body)

	for key, want := range wantSeries(srv) {
		v, ok := got[key]
		if !ok {
			t.Errorf("no series %s", key)
		} else if v != want {
			t.Errorf("%s = %v, want %v", key, v, want)
		}
	}
	counts := map[string]int{}
	for key := range got {
		counts[key[:strings.Index(key, "{")]]++
	}
	for name, want := range map[string]int{
		"canarybot_gpu_info":                      8,
		"canarybot_gpu_clock_event_active":        8*11 + 1, // every known reason per GPU, and one unknown bit
		"canarybot_gpu_ecc_errors_total":          8 * 4,
		"canarybot_gpu_process_memory_used_bytes": 1,
		"canarybot_gpu_xid_errors_total":          2,
	} {
		if counts[name] != want {
			t.Errorf("%d series of %s, want %d", counts[name], name, want)
		}
	}

	// A second scrape within the cache TTL does not read NVML again.
	if resp, _ := get(t, http.MethodGet, ts.URL+MetricsPath); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	if n := len(srv.DeviceGetCountCalls()); n != 1 {
		t.Errorf("two scrapes read NVML %d times, want 1", n)
	}
}

// wantSeries is some of the series busyNode's agent on node gpu-node-1
// must serve, after Xid 79 twice on GPU 3 and Xid 48 on GPU 0.
func wantSeries(srv *server.Server) map[string]float64 {
	// k is the key of series name of device dev (-1: none) with more
	// label name/value pairs.
	k := func(name string, dev int, pairs ...string) string {
		labels := []string{`node="gpu-node-1"`}
		if dev >= 0 {
			labels = append(labels, fmt.Sprintf(`gpu="%d"`, dev), fmt.Sprintf("uuid=%q", gputest.Device(srv, dev).UUID))
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			labels = append(labels, fmt.Sprintf("%s=%q", pairs[i], pairs[i+1]))
		}
		slices.Sort(labels)
		return name + "{" + strings.Join(labels, ",") + "}"
	}
	const p = "canarybot_gpu_"
	return map[string]float64{
		k(p+"up", -1): 1,
		k(p+"info", 0, "name", "NVIDIA H100 80GB HBM3"):                           1,
		k(p+"memory_used_bytes", 0):                                               10 << 30,
		k(p+"memory_total_bytes", 7):                                              80 << 30,
		k(p+"utilization_ratio", 4):                                               0.37,
		k(p+"temperature_celsius", 5):                                             45,
		k(p+"power_watts", 6):                                                     312.5,
		k(p+"clock_event_active", 0, "reason", "GpuIdle"):                         1,
		k(p+"clock_event_active", 0, "reason", "HwSlowdown"):                      0,
		k(p+"clock_event_active", 1, "reason", "GpuIdle"):                         0,
		k(p+"clock_event_active", 1, "reason", "HwSlowdown"):                      1,
		k(p+"clock_event_active", 1, "reason", "SwThermalSlowdown"):               1,
		k(p+"clock_event_active", 1, "reason", "Unknown(0x1000)"):                 1,
		k(p+"ecc_errors_total", 2, "type", "uncorrected", "counter", "volatile"):  1,
		k(p+"ecc_errors_total", 2, "type", "uncorrected", "counter", "aggregate"): 3,
		k(p+"ecc_errors_total", 2, "type", "corrected", "counter", "volatile"):    0,
		k(p+"ecc_errors_total", 2, "type", "corrected", "counter", "aggregate"):   1234,
		k(p+"xid_errors_total", 3, "xid", "79"):                                   2,
		k(p+"xid_errors_total", 0, "xid", "48"):                                   1,
		k(p+"process_memory_used_bytes", 3, "pid", "4242", "pod_uid", podUID, "pod", "qwen-canary-0", "namespace", "llm"): 30 << 30,
		k(p+"collect_errors_total", -1, "op", "open"):     0,
		k(p+"collect_errors_total", -1, "op", "snapshot"): 0,
		k(p+"collect_errors_total", -1, "op", "xid"):      0,
	}
}

func TestMetricsAndAPIWithoutNVML(t *testing.T) {
	srv := gputest.HealthyServer()
	srv.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	a, _ := newTestAgent(t, srv, newTestClock(), Config{})
	ts := serve(t, a)

	_, body := get(t, http.MethodGet, ts.URL+MetricsPath)
	promtoolCheck(t, body)
	got := series(t, body)
	for key, want := range map[string]float64{`canarybot_gpu_up{}`: 0, `canarybot_gpu_collect_errors_total{op="open"}`: 1} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v:\n%s", key, v, ok, want, body)
		}
	}
	for key := range got {
		if strings.Contains(key, "uuid=") {
			t.Errorf("device series %s without NVML", key)
		}
	}
	for _, path := range []string{gpu.APIPath, gpu.APIPath + "?since=2025-03-01T11:00:00Z"} {
		resp, body := get(t, http.MethodGet, ts.URL+path)
		var e gpu.APIError
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusServiceUnavailable ||
			e.Error != "NVML not available on this host: ERROR_LIBRARY_NOT_FOUND" {
			t.Errorf("GET %s = %s %s", path, resp.Status, body)
		}
	}
	if resp, body := get(t, http.MethodGet, ts.URL+HealthPath); resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("GET %s = %s %q", HealthPath, resp.Status, body)
	}
}

// historyNode serves busyNode's agent with snapshots at t0, t0+10s and
// t0+20s, an Xid on GPU 3 between the last two, and the clock at t0+20s,
// so that GETs reuse the last snapshot.
func historyNode(t *testing.T) (ts *httptest.Server, srv *server.Server, t0 time.Time) {
	t.Helper()
	srv, opts := busyNode(t)
	clk := newTestClock()
	t0 = clk.Now()
	a, _ := newTestAgent(t, srv, clk, Config{Node: "gpu-node-1", Interval: 10 * time.Second, History: time.Minute}, opts...)
	for i := range 3 {
		if i == 2 {
			a.recordXid([]gpu.DeviceXid{{Index: 3, UUID: gputest.Device(srv, 3).UUID, XidEvent: gpu.XidEvent{Code: 79, Time: clk.Now()}}})
		}
		if _, err := a.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
		clk.advance(10 * time.Second)
	}
	clk.advance(-10 * time.Second)
	return serve(t, a), srv, t0
}

func TestAPILatest(t *testing.T) {
	ts, srv, t0 := historyNode(t)
	resp, body := get(t, http.MethodGet, ts.URL+gpu.APIPath)
	var snap gpu.Snapshot
	if err := json.Unmarshal(body, &snap); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET = %s %s (%v)", resp.Status, body, err)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("content type %q", resp.Header.Get("Content-Type"))
	}
	if snap.Node != "gpu-node-1" || !snap.Time.Equal(t0.Add(20*time.Second)) || len(snap.Devices) != 8 {
		t.Fatalf("snapshot = node %q at %v with %d devices", snap.Node, snap.Time, len(snap.Devices))
	}
	d3 := snap.Devices[3]
	if want := []gpu.XidEvent{{Code: 79, Time: t0.Add(20 * time.Second)}}; !reflect.DeepEqual(d3.Xid, want) {
		t.Errorf("device 3 Xid = %+v, want %+v", d3.Xid, want)
	}
	wantProcs := []gpu.ProcessSample{
		{PID: 77},
		{PID: 4242, UsedBytes: ptr[uint64](30 << 30), PodUID: podUID, Pod: "qwen-canary-0", Namespace: "llm"},
	}
	if !reflect.DeepEqual(d3.Processes, wantProcs) {
		t.Errorf("device 3 processes = %+v, want %+v", d3.Processes, wantProcs)
	}
	if d2 := snap.Devices[2]; *d2.ECCCorrectedAggregate != 1234 || *d2.ECCUncorrectedVolatile != 1 {
		t.Errorf("device 2 ECC = %+v", d2)
	}
	if resp, body := get(t, http.MethodHead, ts.URL+gpu.APIPath); resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Errorf("HEAD = %s with %d bytes", resp.Status, len(body))
	}
	if n := len(srv.DeviceGetCountCalls()); n != 3 {
		t.Errorf("NVML read %d times, want 3: API calls within the TTL reuse the cache", n)
	}
}

func TestAPIHistory(t *testing.T) {
	ts, _, t0 := historyNode(t)
	for _, tc := range []struct {
		name  string
		query string
		want  []time.Duration
	}{
		{"since all", "?since=2025-03-01T11:00:00Z", []time.Duration{0, 10 * time.Second, 20 * time.Second}},
		{"since inclusive", "?since=2025-03-01T12:00:10Z", []time.Duration{10 * time.Second, 20 * time.Second}},
		{"since with offset and fraction", "?since=2025-03-01T13:00:10.5%2B01:00", []time.Duration{20 * time.Second}},
		{"since future", "?since=2025-03-02T00:00:00Z", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, http.MethodGet, ts.URL+gpu.APIPath+tc.query)
			var h gpu.History
			if err := json.Unmarshal(body, &h); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET = %s %s (%v)", resp.Status, body, err)
			}
			if !strings.Contains(string(body), `"samples": [`) {
				t.Errorf("samples is not a list: %s", body)
			}
			var got []time.Duration
			for _, s := range h.Samples {
				got = append(got, s.Time.Sub(t0))
			}
			if h.Node != "gpu-node-1" || !slices.Equal(got, tc.want) {
				t.Errorf("history node %q samples at %v, want %v", h.Node, got, tc.want)
			}
		})
	}
}

func TestAPIBadRequests(t *testing.T) {
	ts, _, _ := historyNode(t)
	for _, tc := range []struct {
		name, method, query string
		code                int
		msg                 string
	}{
		{"bad since", "GET", "?since=yesterday", 400, `bad since "yesterday": want an RFC 3339 time such as 2025-03-01T12:00:00Z`},
		{"empty since", "GET", "?since=", 400, `bad since "": want an RFC 3339 time such as 2025-03-01T12:00:00Z`},
		{"since twice", "GET", "?since=2025-03-01T11:00:00Z&since=2025-03-01T11:00:00Z", 400, "since given 2 times: give it once"},
		{"unknown parameter", "GET", "?node=x", 400, `unknown query parameter "node": the only one is since`},
		{"post", "POST", "", 405, "method POST not allowed: use GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, tc.method, ts.URL+gpu.APIPath+tc.query)
			var e gpu.APIError
			if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != tc.code || e.Error != tc.msg {
				t.Errorf("%s %s = %s %s, want %d %q", tc.method, tc.query, resp.Status, body, tc.code, tc.msg)
			}
			if tc.code == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
		})
	}
}

// A 400 answer quotes at most 64 bytes of what it refuses: a 100 KB
// query is not echoed back.
func TestAPIBadRequestsEchoLittle(t *testing.T) {
	ts, _, _ := historyNode(t)
	long := strings.Repeat("é", 50_000) // 100,000 bytes, two per rune
	head := strings.Repeat("é", 32)     // 64 bytes
	for _, tc := range []struct{ name, method, query, msg string }{
		{"long since", "GET", "?since=" + long,
			`bad since "` + head + `…" (100000 bytes): want an RFC 3339 time such as 2025-03-01T12:00:00Z`},
		{"long since, cut inside a rune", "GET", "?since=x" + long,
			`bad since "x` + head[:62] + `…" (100001 bytes): want an RFC 3339 time such as 2025-03-01T12:00:00Z`},
		{"long parameter", "GET", "?" + long + "=1", `unknown query parameter "` + head + `…" (100000 bytes): the only one is since`},
		{"long method", strings.Repeat("P", 100_000), "", `method "` + strings.Repeat("P", 64) + `…" (100000 bytes) not allowed: use GET`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, tc.method, ts.URL+gpu.APIPath+tc.query)
			var e gpu.APIError
			if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode/100 != 4 || e.Error != tc.msg {
				t.Errorf("answer %s (%d bytes) %.300s…, want %q", resp.Status, len(body), body, tc.msg)
			}
			if len(body) > 512 {
				t.Errorf("answer is %d bytes", len(body))
			}
		})
	}
}

func TestAPIWholeFailure(t *testing.T) {
	srv := gputest.HealthyServer()
	srv.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	a, _ := newTestAgent(t, srv, newTestClock(), Config{})
	resp, body := get(t, http.MethodGet, serve(t, a).URL+gpu.APIPath)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "get device count: ERROR_UNKNOWN") {
		t.Errorf("GET = %s %s", resp.Status, body)
	}
}

func ptr[T any](v T) *T { return &v }
