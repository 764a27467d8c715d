package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/canarybot/canarybot/pkg/gpu"
)

// Paths the agent serves besides gpu.APIPath.
const (
	MetricsPath = "/metrics"
	HealthPath  = "/healthz"
)

// Handler serves the metrics gathered from g (with the agent's
// registered) at MetricsPath, the JSON API at gpu.APIPath, and a liveness
// answer at HealthPath, which says "ok" even without NVML: the agent is
// alive and reports the problem through its metrics.
func (a *Agent) Handler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc(gpu.APIPath, a.serveGPUs)
	mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// serveGPUs answers gpu.APIPath: the latest gpu.Snapshot, or with
// ?since=<RFC 3339> the gpu.History since then.
func (a *Agent) serveGPUs(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		method := r.Method
		if len(method) > maxQuoted {
			method = quote(method)
		}
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: use GET", method))
		return
	}
	since, err := parseSince(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	snap, err := a.Snapshot(r.Context())
	if err != nil && len(snap.Devices) == 0 {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if since == nil {
		if snap.Devices == nil {
			snap.Devices = []gpu.DeviceSample{} // a host without GPUs
		}
		writeJSON(w, http.StatusOK, snap)
		return
	}
	writeJSON(w, http.StatusOK, a.History(*since))
}

// parseSince reads the since parameter: nil when absent. Other
// parameters, a repeated since or one that is not RFC 3339 are errors.
func parseSince(r *http.Request) (*time.Time, error) {
	q := r.URL.Query()
	for k := range q {
		if k != gpu.SinceParam {
			return nil, fmt.Errorf("unknown query parameter %s: the only one is %s", quote(k), gpu.SinceParam)
		}
	}
	vs, ok := q[gpu.SinceParam]
	if !ok {
		return nil, nil
	}
	if len(vs) != 1 {
		return nil, fmt.Errorf("%s given %d times: give it once", gpu.SinceParam, len(vs))
	}
	t, err := time.Parse(time.RFC3339Nano, vs[0])
	if err != nil {
		return nil, fmt.Errorf("bad %s %s: want an RFC 3339 time such as 2025-03-01T12:00:00Z", gpu.SinceParam, quote(vs[0]))
	}
	return &t, nil
}

// maxQuoted is the most bytes of a client's value that an error answer
// echoes: a query may be as long as the server's header limit (1 MiB).
const maxQuoted = 64

// quote quotes s for an error answer: whole when it is at most maxQuoted
// bytes, else its first maxQuoted bytes (cut on a rune boundary) with an
// ellipsis and its length.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s (%d bytes)", strconv.Quote(s[:cut]+"…"), len(s))
}

// writeJSON writes v as the JSON body with status code, or a 500 when v
// does not encode.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(gpu.APIError{Error: "encode answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n')) // the client went away
}

// writeError writes a gpu.APIError.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, gpu.APIError{Error: msg})
}
