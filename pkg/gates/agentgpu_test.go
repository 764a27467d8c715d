package gates

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/signals"
)

// A gpu-agent that answers badly gives an error that names the agent and
// says what was wrong; the series is left as it was.
func TestAgentGPURefusesBadAnswers(t *testing.T) {
	spec := func(url string) *canary.GPUSignals {
		return &canary.GPUSignals{Preset: canary.GPUPresetCanarybot, Agents: []string{url},
			Stable: map[string]string{"pod": "s"}, Canary: map[string]string{"pod": "c"}}
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"NVML missing on the node", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"NVML not available on this host: ERROR_LIBRARY_NOT_FOUND"}`))
		}, "503 Service Unavailable: NVML not available on this host: ERROR_LIBRARY_NOT_FOUND"},
		{"not an agent", func(w http.ResponseWriter, _ *http.Request) {
			http.NotFound(w, nil)
		}, "404 Not Found"},
		{"garbage", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("<html>hello</html>"))
		}, "decode history: invalid character '<'"},
		{"oversized", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"samples":[` + strings.Repeat(" ", 2048) + `]}`))
		}, "answer is over 1024 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			s := gpuSeries(epoch, 3, func(int, *signals.Interval) {})
			err := AgentGPU{MaxBody: 1024}.FillGPU(t.Context(), spec(srv.URL), s, 10*time.Second)
			if err == nil || !strings.Contains(err.Error(), "gpu-agent "+srv.URL) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming the agent and saying %q", err, tc.want)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		err := AgentGPU{}.FillGPU(t.Context(), spec(url), gpuSeries(epoch, 3, func(int, *signals.Interval) {}), 10*time.Second)
		if err == nil || !strings.Contains(err.Error(), "gpu-agent "+url) || canary.IsTerminal(err) {
			t.Fatalf("err = %v, want a retryable error naming the agent", err)
		}
	})
}

// An agent URL with a credential is named without it.
func TestAgentGPUErrorsHideCredentials(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := strings.Replace(srv.URL, "http://", "http://SECRET@", 1) + "/?token=SECRET"
	srv.Close()
	spec := &canary.GPUSignals{Preset: canary.GPUPresetCanarybot, Agents: []string{url},
		Stable: map[string]string{"pod": "s"}, Canary: map[string]string{"pod": "c"}}
	err := AgentGPU{}.FillGPU(t.Context(), spec, gpuSeries(epoch, 3, func(int, *signals.Interval) {}), 10*time.Second)
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "gpu-agent http://xxxxx@") {
		t.Fatalf("err = %v, want one naming the agent without the credential", err)
	}
}
