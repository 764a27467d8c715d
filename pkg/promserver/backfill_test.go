package promserver

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

func TestLaunchArgs(t *testing.T) {
	got := launchArgs(Options{TSDBPath: "/blocks", Retention: 100 * 365 * 24 * time.Hour, LookbackDelta: 2 * time.Second},
		"/d", "/d/prometheus.yml", "127.0.0.1:9")
	want := []string{"--config.file=/d/prometheus.yml", "--storage.tsdb.path=/blocks", "--web.listen-address=127.0.0.1:9",
		"--storage.tsdb.retention.time=3153600000000ms", "--query.lookback-delta=2000ms"}
	if !slices.Equal(got, want) {
		t.Errorf("launchArgs = %q, want %q", got, want)
	}
	if got := launchArgs(Options{}, "/d", "/d/p.yml", "a:1"); !slices.Contains(got, "--storage.tsdb.path=/d/data") || len(got) != 3 {
		t.Errorf("launchArgs without options = %q, want the default TSDB path and nothing more", got)
	}
}

func TestBackfillWithoutPromtoolSaysHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Backfill(t.Context(), BackfillOptions{Input: "x.om", DataDir: t.TempDir()})
	if !errors.Is(err, ErrPromtoolNotInstalled) || !strings.Contains(err.Error(), installHint) {
		t.Errorf("Backfill error = %v, want ErrPromtoolNotInstalled with install instructions", err)
	}
}

func TestBackfillReportsPromtoolOutput(t *testing.T) {
	input := filepath.Join(t.TempDir(), "bad.om")
	if err := os.WriteFile(input, []byte("not openmetrics at all\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Backfill(t.Context(), BackfillOptions{Input: input, DataDir: t.TempDir(), Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "promtool output") {
		t.Errorf("Backfill error = %v, want the failure with promtool's output", err)
	}
}

// TestBackfillThenServe backfills a counter last year and serves it: a
// query at a known time answers the value written for it.
func TestBackfillThenServe(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var b strings.Builder
	b.WriteString("# TYPE canarybot_it_requests counter\n")
	for i := range 61 {
		ts := t0.Add(time.Duration(i) * time.Second).Unix()
		b.WriteString("canarybot_it_requests_total{role=\"canary\"} " + strconv.Itoa(3*i) + " " + strconv.FormatInt(ts, 10) + ".000\n")
	}
	b.WriteString("# EOF\n")
	input := filepath.Join(dir, "in.om")
	if err := os.WriteFile(input, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := Backfill(t.Context(), BackfillOptions{Input: input, DataDir: data, Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	s, err := Start(t.Context(), Options{Dir: filepath.Join(dir, "prom"), TSDBPath: data,
		Retention: 100 * 365 * 24 * time.Hour, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	c, err := api.NewClient(api.Config{Address: s.URL()})
	if err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]float64{
		`canarybot_it_requests_total{role="canary"}`:                60, // at t0+20s
		`increase(canarybot_it_requests_total{role="canary"}[10s])`: 30, // exact: samples at both ends
	} {
		v, _, _, err := v1.NewAPI(c).Query(t.Context(), q, t0.Add(20*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if vec, ok := v.(model.Vector); !ok || len(vec) != 1 || float64(vec[0].Value) != want {
			t.Errorf("%s at t0+20s = %v, want %v", q, v, want)
		}
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(data); err != nil {
		t.Errorf("Stop removed the TSDB it was given: %v", err)
	}
}
