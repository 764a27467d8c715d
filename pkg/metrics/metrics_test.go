package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/canarybot/canarybot/internal/promtooltest"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/canary/canarytest"
	"github.com/canarybot/canarybot/pkg/github"
	"github.com/canarybot/canarybot/pkg/metrics"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// plan is a three-step plan: 10%, an analysis by a threshold gate (30 s
// × 4 after 1 m), a pause of 5 m; Argo CD's sync timeout 2 m.
func plan(t *testing.T) *canary.CanaryPlan {
	t.Helper()
	p, err := canary.ParsePlan([]byte(`apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: qwen}
spec:
  model: {name: qwen, source: {oci: {repository: ghcr.io/acme/qwen}}}
  traffic: {mode: kserve, kserve: {inferenceService: qwen}}
  overlay: manifests/overlays/qwen
  argocd: {application: qwen, syncTimeout: 2m}
  steps:
  - setWeight: 10
  - analysis: {gates: [errors]}
  - pause: {duration: 5m}
  - pause: {untilApproved: true}
  gates:
  - name: errors
    threshold: {query: up, successCondition: result < 1, interval: 30s, initialDelay: 1m, count: 4}
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fixture is a Recorder on its own registry, beside GitHub's counters,
// and an HTTP server scraping that registry.
type fixture struct {
	rec   *metrics.Recorder
	clock *canarytest.ManualClock
	gh    *github.Metrics
	srv   *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	clock := canarytest.NewManualClock(t0)
	rec, err := metrics.New(reg, metrics.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	gh, err := github.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return &fixture{rec: rec, clock: clock, gh: gh, srv: srv}
}

// scrape GETs /metrics and returns the exposition and its samples keyed
// name{label="value",…}, labels sorted.
func (f *fixture) scrape(t *testing.T) ([]byte, map[string]float64) {
	t.Helper()
	resp, err := http.Get(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body, samples(t, body)
}

func samples(t *testing.T, body []byte) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// progressing is a report of a tick that left plan p's rollout at step,
// weight, started at start.
func progressing(p *canary.CanaryPlan, step, weight int, start time.Time, d canary.Action) canary.Report {
	return canary.Report{Plan: "qwen", CanaryPlan: p, Decision: canary.Decision{Action: d},
		Current: canary.StateStatus{Phase: canary.PhaseProgressing, StepIndex: step, Weight: weight, StepStartedAt: start}}
}

const q = `{plan="qwen",repo="acme/gitops"}`

// A rollout from start to revert, tick by tick: every per-plan series
// says where it is, the bot's histograms and counters add up, a stopping
// tick counts for nothing, and Retain removes a deleted plan's series.
func TestRecorderFollowsARollout(t *testing.T) {
	f, p := newFixture(t), plan(t)
	after := f.rec.AfterTick("acme/gitops", "qwen")

	start := progressing(p, 0, 10, t0, canary.ActStart)
	start.Commit, start.PushTook = canary.CommitResult{SHA: "c1", Attempts: 3}, 1500*time.Millisecond
	after(start, nil, 2*time.Second)
	f.clock.Advance(90 * time.Second)
	_, s := f.scrape(t)
	for series, want := range map[string]float64{
		`canarybot_rollout_phase{phase="Progressing",plan="qwen",repo="acme/gitops"}`:         1,
		`canarybot_rollout_phase{phase="Idle",plan="qwen",repo="acme/gitops"}`:                0,
		"canarybot_rollout_step_index" + q:                                                    0,
		"canarybot_rollout_canary_weight_percent" + q:                                         10,
		"canarybot_rollout_step_seconds" + q:                                                  90,
		"canarybot_rollout_step_expected_seconds" + q:                                         120,
		"canarybot_rollout_last_successful_reconcile_timestamp_seconds" + q:                   float64(t0.Unix()),
		"canarybot_rollout_reconcile_failing" + q:                                             0,
		`canarybot_rollout_decisions_total{action="start",plan="qwen",repo="acme/gitops"}`:    1,
		`canarybot_rollout_transitions_total{action="start",plan="qwen",repo="acme/gitops"}`:  1,
		`canarybot_rollout_transitions_total{action="revert",plan="qwen",repo="acme/gitops"}`: 0,
		`canarybot_reconcile_duration_seconds_count{result="success"}`:                        1,
		"canarybot_push_duration_seconds_sum":                                                 1.5,
		"canarybot_push_retries_total":                                                        2,
	} {
		if got, ok := s[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}

	// Step 1, an analysis: synced 40 s after the step started, seen by two
	// ticks; its gate Running twice.
	analysis := progressing(p, 1, 10, t0.Add(2*time.Minute), canary.ActWait)
	analysis.SyncWait = 40 * time.Second
	analysis.Observed.Sync = canary.SyncObservation{Ready: true, SyncedAt: t0.Add(2*time.Minute + 40*time.Second)}
	analysis.Observed.Gates = []canary.GateResult{{Gate: "errors", Verdict: canary.VerdictRunning}}
	after(analysis, nil, time.Second)
	after(analysis, nil, time.Second)
	after(canary.Report{}, errors.New("fetch: connection refused"), 30*time.Second)
	after(canary.Report{}, fmt.Errorf("observe qwen: %w", context.Canceled), time.Second) // stopping: not recorded
	_, s = f.scrape(t)
	for series, want := range map[string]float64{
		"canarybot_rollout_step_expected_seconds" + q:                                                           120 + 60 + 4*30,
		`canarybot_rollout_gate_verdicts_total{gate="errors",plan="qwen",repo="acme/gitops",verdict="Running"}`: 2,
		"canarybot_sync_wait_seconds_count":                                                                     1,
		"canarybot_sync_wait_seconds_sum":                                                                       40,
		"canarybot_rollout_reconcile_failing" + q:                                                               1,
		`canarybot_reconcile_duration_seconds_count{result="error"}`:                                            1,
		`canarybot_reconcile_duration_seconds_count{result="success"}`:                                          3,
		"canarybot_rollout_step_index" + q:                                                                      1,
	} {
		if got, ok := s[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}

	revert := canary.Report{Plan: "qwen", CanaryPlan: p, Decision: canary.Decision{Action: canary.ActRevert},
		Commit:  canary.CommitResult{SHA: "c2", Attempts: 1},
		Current: canary.StateStatus{Phase: canary.PhaseReverted, StepStartedAt: t0.Add(3 * time.Minute)}}
	after(revert, nil, time.Second)
	body, s := f.scrape(t)
	if s[`canarybot_rollout_transitions_total{action="revert",plan="qwen",repo="acme/gitops"}`] != 1 ||
		s[`canarybot_rollout_phase{phase="Reverted",plan="qwen",repo="acme/gitops"}`] != 1 ||
		s["canarybot_rollout_reconcile_failing"+q] != 0 {
		t.Errorf("after the revert:\n%s", body)
	}
	for _, gone := range []string{"canarybot_rollout_step_seconds" + q, "canarybot_rollout_step_expected_seconds" + q} {
		if _, ok := s[gone]; ok {
			t.Errorf("%s is exported for a reverted rollout", gone)
		}
	}
	promtooltest.CheckMetrics(t, body)

	f.rec.Retain("acme/gitops", []string{"other"})
	body, _ = f.scrape(t)
	if strings.Contains(string(body), `plan="qwen"`) {
		t.Errorf("series of a deleted plan remain:\n%s", body)
	}
}

// The expected time of each kind of step: sync timeout, plus a pause,
// plus a threshold analysis's initialDelay + interval × count, or the
// budget for gates without a bound; none for an approval.
func TestExpectedStep(t *testing.T) {
	p := plan(t)
	for i, want := range []time.Duration{2 * time.Minute, 5 * time.Minute, 7 * time.Minute, 0, 0} {
		got, ok := metrics.ExpectedStep(p, i, time.Hour)
		if got != want || ok != (want > 0) {
			t.Errorf("step %d: %s %v, want %s", i, got, ok, want)
		}
	}
	p.Spec.Gates = append(p.Spec.Gates, canary.GateSpec{Name: "judge", Type: canary.GateJudge, Judge: &canary.JudgeGate{}})
	p.Spec.Steps[1].Analysis.Gates = []string{"errors", "judge"}
	if got, _ := metrics.ExpectedStep(p, 1, 45*time.Minute); got != 47*time.Minute {
		t.Errorf("analysis with a judge gate: %s, want the sync timeout + 45m", got)
	}
}

type fakeSource struct{ err error }

func (s fakeSource) Latest(context.Context, *canary.CanaryPlan) (*canary.Artifact, error) {
	return nil, s.err
}

// Registry look-ups count by source kind, failures apart; those cut short
// by a stopping process do not count.
func TestArtifactsCountsPollsAndErrors(t *testing.T) {
	f, p := newFixture(t), plan(t)
	ok, bad := f.rec.Artifacts(fakeSource{}), f.rec.Artifacts(fakeSource{err: errors.New("registry: 503")})
	ctx := context.Background()
	_, _ = ok.Latest(ctx, p)
	_, _ = bad.Latest(ctx, p)
	_, _ = bad.Latest(ctx, p)
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = bad.Latest(stopped, p)
	_, s := f.scrape(t)
	if s[`canarybot_registry_polls_total{source="oci"}`] != 3 || s[`canarybot_registry_poll_errors_total{source="oci"}`] != 2 {
		t.Errorf("polls %v, errors %v; want 3 and 2", s[`canarybot_registry_polls_total{source="oci"}`],
			s[`canarybot_registry_poll_errors_total{source="oci"}`])
	}
	if v, ok := s[`canarybot_registry_poll_errors_total{source="mlflow"}`]; !ok || v != 0 {
		t.Error("the error counters of every source kind should start at 0")
	}
}

type headers http.Header

func (h headers) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header(h).Clone(), Body: http.NoBody, Request: req}, nil
}

// GitHub's rate limit, as its last response said, is on the same
// registry as the API counters and the rollout metrics.
func TestGitHubRateLimitGauges(t *testing.T) {
	f := newFixture(t)
	h := headers{"X-Ratelimit-Remaining": {"412"}, "X-Ratelimit-Limit": {"5000"}, "X-Ratelimit-Reset": {"1795435200"},
		"X-Ratelimit-Resource": {"core"}}
	client := &http.Client{Transport: &github.Transport{Base: h, Metrics: f.gh}}
	resp, err := client.Get("https://api.github.com/repos/acme/gitops/pulls/7")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, s := f.scrape(t)
	for series, want := range map[string]float64{
		`canarybot_github_rate_limit_remaining{resource="core"}`:                                                    412,
		`canarybot_github_rate_limit_limit{resource="core"}`:                                                        5000,
		`canarybot_github_rate_limit_reset_timestamp_seconds{resource="core"}`:                                      1795435200,
		`canarybot_github_api_requests_total{endpoint="/repos/{owner}/{repo}/pulls/{n}",method="GET",status="200"}`: 1,
	} {
		if s[series] != want {
			t.Errorf("%s = %v, want %v", series, s[series], want)
		}
	}
}

// exported lists the metric names a populated Recorder and GitHub's
// metrics expose, sorted.
func exported(t *testing.T) []string {
	t.Helper()
	reg := prometheus.NewRegistry()
	rec, err := metrics.New(reg, metrics.Options{Clock: canarytest.NewManualClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	gh, err := github.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r := progressing(plan(t), 1, 10, t0, canary.ActAdvance)
	r.Commit, r.SyncWait = canary.CommitResult{SHA: "c", Attempts: 1}, time.Second
	r.Observed.Gates = []canary.GateResult{{Gate: "errors", Verdict: canary.VerdictRunning}}
	rec.Tick("acme/gitops", "qwen", r, nil, time.Second)
	client := &http.Client{Transport: &github.Transport{Metrics: gh, Base: headers{"X-Ratelimit-Remaining": {"1"},
		"X-Ratelimit-Limit": {"2"}, "X-Ratelimit-Reset": {"3"}}}}
	if resp, err := client.Get("https://api.github.com/rate_limit"); err == nil {
		resp.Body.Close()
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fams {
		names = append(names, f.GetName())
	}
	slices.Sort(names)
	return names
}
