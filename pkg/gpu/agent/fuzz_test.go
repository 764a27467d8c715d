package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canarybot/canarybot/pkg/gpu"
)

// oneGPU is a Source with one healthy device, for tests without NVML.
type oneGPU struct{}

func (oneGPU) Open(context.Context) error { return nil }

func (oneGPU) Snapshot(context.Context) (gpu.Snapshot, error) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return gpu.Snapshot{Time: at, Devices: []gpu.DeviceSample{{Index: 0, UUID: "GPU-0", Name: "NVIDIA H100", Time: at}}}, nil
}

func (oneGPU) WaitXid(context.Context, time.Duration) ([]gpu.DeviceXid, error) { return nil, nil }

// FuzzQuery sends GET gpu.APIPath with the input as its query to the
// agent's real handler and checks the answer against parseSince: 400 with
// a bounded message when it refuses, the snapshot when there is no since,
// the history when there is one; an accepted since round-trips through
// RFC 3339 and came from the only parameter, given once.
func FuzzQuery(f *testing.F) {
	for _, q := range []string{
		"", "since=2025-03-01T12:00:00Z", "since=2025-03-01T12:00:00.123456789%2B02:00", "since=2025-03-01T12:00:00+02:00",
		"since=yesterday", "since=2025-03-01T12:00:00Z&since=2025-03-01T12:00:00Z", "node=gpu-1", "since=", "since",
		"since=2025-02-30T12:00:00Z", "since=%zz", "a;b=c", "since=9999-12-31T23:59:59.999999999-23:59",
		"since=" + strings.Repeat("%00", 2000), strings.Repeat("k", 3000) + "=1",
	} {
		f.Add(q)
	}
	a, err := New(oneGPU{}, Config{Node: "gpu-node-1"})
	if err != nil {
		f.Fatal(err)
	}
	h := a.Handler(prometheus.NewRegistry())
	f.Fuzz(func(t *testing.T, q string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: gpu.APIPath, RawQuery: q}, Header: http.Header{},
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: "agent"}
		since, err := parseSince(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r.WithContext(context.Background()))
		switch {
		case err != nil:
			var answer gpu.APIError
			// Not answer.Error == err.Error(): of several unknown
			// parameters, the one named depends on map order.
			if since != nil || err.Error() == "" || w.Code != http.StatusBadRequest ||
				json.Unmarshal(w.Body.Bytes(), &answer) != nil || answer.Error == "" {
				t.Fatalf("refused with %q, but answered %d %s", err, w.Code, w.Body)
			}
			// At most maxQuoted bytes of the query are echoed, each at most
			// 4 bytes quoted (\x00), beside a sentence.
			if len(answer.Error) > 4*maxQuoted+200 {
				t.Fatalf("a %d-byte query got a %d-byte error", len(q), len(answer.Error))
			}
		case since == nil:
			var snap gpu.Snapshot
			if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &snap) != nil || len(snap.Devices) != 1 {
				t.Fatalf("no since: answered %d %s, want the snapshot", w.Code, w.Body)
			}
		default:
			var hist gpu.History
			if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &hist) != nil || hist.Samples == nil {
				t.Fatalf("since %v: answered %d %s, want the history", since, w.Code, w.Body)
			}
			if back, err := time.Parse(time.RFC3339Nano, since.Format(time.RFC3339Nano)); err != nil || !back.Equal(*since) {
				t.Fatalf("since %v does not round-trip through RFC 3339: %v, %v", since, back, err)
			}
		}
		if err == nil {
			for k, vs := range r.URL.Query() {
				if k != gpu.SinceParam || len(vs) != 1 {
					t.Fatalf("accepted query %q with %s=%q", q, k, vs)
				}
			}
		}
	})
}
