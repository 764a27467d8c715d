package promserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

const installHint = "sudo apt-get install -y --no-install-recommends prometheus"

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestRenderConfig(t *testing.T) {
	b, err := RenderConfig(Options{
		ScrapeInterval: 250 * time.Millisecond,
		Targets: []Target{
			{Addr: "127.0.0.1:8080", Labels: map[string]string{"track": "stable"}},
			{Addr: "127.0.0.1:8081"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got promConfig
	if err := yaml.UnmarshalStrict(b, &got); err != nil {
		t.Fatalf("rendered config does not read back: %v\n%s", err, b)
	}
	want := promConfig{
		Global: globalConfig{ScrapeInterval: "250ms", ScrapeTimeout: "250ms", EvaluationInterval: "250ms"},
		ScrapeConfigs: []scrapeConfig{{JobName: "canarybot", StaticConfigs: []staticConfig{
			{Targets: []string{"127.0.0.1:8080"}, Labels: map[string]string{"track": "stable"}},
			{Targets: []string{"127.0.0.1:8081"}},
		}}},
	}
	if string(mustYAML(t, got)) != string(mustYAML(t, want)) {
		t.Errorf("config:\n%s\nwant:\n%s", b, mustYAML(t, want))
	}
}

func mustYAML(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRenderConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"target without port", Options{Targets: []Target{{Addr: "localhost"}}}, `target 0: address "localhost" is not host:port`},
		{"negative interval", Options{ScrapeInterval: -time.Second}, "scrape interval must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := RenderConfig(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("RenderConfig error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestStartWithoutBinarySaysHowToInstall(t *testing.T) {
	tests := []struct {
		name, binary string
	}{
		{"not in PATH", ""},
		{"explicit path missing", filepath.Join(t.TempDir(), "prometheus")},
	}
	t.Setenv("PATH", t.TempDir())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(t.Context(), Options{Binary: tt.binary})
			if err == nil {
				_ = s.Stop()
				t.Fatal("Start succeeded without a binary")
			}
			if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), installHint) ||
				!strings.Contains(err.Error(), "https://prometheus.io/download/") {
				t.Errorf("Start error = %v, want ErrNotInstalled with install instructions", err)
			}
		})
	}
}

func TestStartReportsPrometheusOutputOnFailure(t *testing.T) {
	dir := t.TempDir()
	s, err := Start(t.Context(), Options{
		Dir:     dir,
		Targets: []Target{{Addr: "127.0.0.1:1", Labels: map[string]string{"bad-label": "x"}}},
		Logger:  testLogger(t),
	})
	if err == nil {
		_ = s.Stop()
		t.Fatal("Start succeeded with an invalid label name")
	}
	if !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "bad-label") {
		t.Errorf("Start error = %v, want the exit and Prometheus's complaint about the label", err)
	}
}

// TestStartScrapesTargets runs the real binary against an in-process
// /metrics endpoint.
func TestStartScrapesTargets(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "promserver_test_value", Help: "A test gauge."})
	reg.MustRegister(g)
	g.Set(42)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()

	dir := t.TempDir()
	s, err := Start(t.Context(), Options{
		Dir:            dir,
		ScrapeInterval: 250 * time.Millisecond,
		Targets:        []Target{{Addr: strings.TrimPrefix(target.URL, "http://"), Labels: map[string]string{"track": "canary"}}},
		Logger:         testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %q, want a loopback URL", s.URL())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	v, err := s.WaitForSamples(ctx, `promserver_test_value{job="canarybot", track="canary"}`)
	if err != nil {
		t.Fatal(err)
	}
	vec, ok := v.(model.Vector)
	if !ok || len(vec) != 1 || vec[0].Value != 42 {
		t.Fatalf("WaitForSamples = %v, want one sample of 42", v)
	}
	for _, p := range []string{"prometheus.yml", "data"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if resp, err := http.Get(s.URL() + "/-/ready"); err == nil {
		_ = resp.Body.Close()
		t.Errorf("prometheus still answers after Stop: %s", resp.Status)
	}
	if _, err := s.WaitForSamples(t.Context(), "up"); err == nil || !strings.Contains(err.Error(), "prometheus exited") {
		t.Errorf("WaitForSamples after Stop = %v, want a prometheus exited error", err)
	}
}

func TestStopRemovesTemporaryDirectory(t *testing.T) {
	s, err := Start(t.Context(), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.removeDir
	if _, err := os.Stat(filepath.Join(dir, "prometheus.yml")); err != nil {
		t.Fatalf("config not written: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary directory %s still there after Stop: %v", dir, err)
	}
}

func TestWaitForSamplesHonorsDeadline(t *testing.T) {
	s, err := Start(t.Context(), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := s.WaitForSamples(ctx, "no_such_metric"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitForSamples = %v, want context.DeadlineExceeded", err)
	}
}
