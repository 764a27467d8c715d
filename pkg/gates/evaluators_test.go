package gates

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// fakeEvaluator is a canary.GateEvaluator set with EvaluateFn.
type fakeEvaluator struct {
	EvaluateFn func(ctx context.Context, gate canary.GateSpec, w canary.Window) (canary.GateResult, error)
}

func (f fakeEvaluator) Evaluate(ctx context.Context, gate canary.GateSpec, w canary.Window) (canary.GateResult, error) {
	return f.EvaluateFn(ctx, gate, w)
}

func TestEvaluatorsDispatch(t *testing.T) {
	w := canary.Window{Start: t0, Now: t0.Add(time.Minute)}
	var got canary.Window
	e := Evaluators{"threshold": fakeEvaluator{EvaluateFn: func(_ context.Context, g canary.GateSpec, w canary.Window) (canary.GateResult, error) {
		got = w
		return canary.GateResult{Gate: g.Name, Verdict: canary.VerdictSuccessful}, nil
	}}}
	res, err := e.Evaluate(t.Context(), canary.GateSpec{Name: "latency", Type: "threshold"}, w)
	if err != nil || res.Gate != "latency" || res.Verdict != canary.VerdictSuccessful || got != w {
		t.Errorf("Evaluate = %+v, %v (window %v); want the threshold evaluator's result", res, err, got)
	}
}

func TestEvaluatorsUnknownTypeIsTerminal(t *testing.T) {
	called := false
	th := fakeEvaluator{EvaluateFn: func(context.Context, canary.GateSpec, canary.Window) (canary.GateResult, error) {
		called = true
		return canary.GateResult{}, nil
	}}
	tests := []struct {
		name  string
		e     Evaluators
		gtype string
		want  string
	}{
		{"unknown type", Evaluators{"threshold": th, "nvml": th}, "datadog", `gate g: unknown gate type "datadog" (known types: nvml, threshold)`},
		{"empty type has no fallback", Evaluators{"threshold": th}, "", `unknown gate type "" (known types: threshold)`},
		{"nil evaluator", Evaluators{"threshold": nil}, "threshold", "(known types: none registered)"},
		{"nil map", nil, "threshold", "none registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.e.Evaluate(t.Context(), canary.GateSpec{Name: "g", Type: tt.gtype}, canary.Window{Start: t0})
			if err == nil || !canary.IsTerminal(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Evaluate error = %v, want a terminal error containing %q", err, tt.want)
			}
		})
	}
	if called {
		t.Error("an evaluator was called for a gate of another type")
	}
}

func TestNewPrometheusRejectsBadAddresses(t *testing.T) {
	for _, addr := range []string{"", "prometheus:9090", "ftp://prom", "http://", "http://a b"} {
		if q, err := NewPrometheus(addr, nil); err == nil {
			t.Errorf("NewPrometheus(%q) = %v, want an error", addr, q)
		}
	}
}

// roundTripFunc is an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNewPrometheusQueriesAtTheInstant(t *testing.T) {
	var gotPath, gotQuery, gotTime, gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		gotPath, gotQuery, gotTime, gotAuth = r.URL.Path, r.Form.Get("query"), r.Form.Get("time"), r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1748779260,"0.25"]}]}}`))
	}))
	defer srv.Close()
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer t")
		return http.DefaultTransport.RoundTrip(r)
	})
	q, err := NewPrometheus(srv.URL+"/prom", rt)
	if err != nil {
		t.Fatal(err)
	}
	th := canary.ThresholdGate{Query: "sum(up)", SuccessCondition: "result < 1", Count: ptr(1)}
	res, err := NewThreshold(q, nil).Evaluate(t.Context(), gate(th), canary.Window{Start: t0, Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != canary.VerdictSuccessful || res.Value != "0.25" {
		t.Errorf("result = %+v", res)
	}
	wantTime := "1748779260" // t0 + 1m, in Unix seconds
	if gotPath != "/prom/api/v1/query" || gotQuery != "sum(up)" || gotTime != wantTime || gotAuth != "Bearer t" {
		t.Errorf("request path %q query %q time %q auth %q; want /prom/api/v1/query, sum(up), %s, Bearer t", gotPath, gotQuery, gotTime, gotAuth, wantTime)
	}
}
