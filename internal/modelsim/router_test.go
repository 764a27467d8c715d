package modelsim

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"
)

func newRouter(t *testing.T, stable, canary string, ws, wc int) *Router {
	t.Helper()
	r, err := NewRouter(RouterConfig{
		StableURL: stable, CanaryURL: canary, StableWeight: ws, CanaryWeight: wc,
		Rand: rand.New(rand.NewPCG(42, 42)),
	})
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	return r
}

func TestRouterSplitFollowsWeights(t *testing.T) {
	r := newRouter(t, "http://127.0.0.1:1", "http://127.0.0.1:2", 100, 0)
	const draws = 5000
	count := func() (stable, canary int) {
		for range draws {
			switch r.Pick() {
			case RoleStable:
				stable++
			case RoleCanary:
				canary++
			}
		}
		return stable, canary
	}
	if s, c := count(); s != draws || c != 0 {
		t.Errorf("100/0: %d stable, %d canary", s, c)
	}
	if err := r.SetWeights(0, 100); err != nil {
		t.Fatal(err)
	}
	if s, c := count(); s != 0 || c != draws {
		t.Errorf("0/100: %d stable, %d canary", s, c)
	}
	if err := r.SetWeights(30, 70); err != nil {
		t.Fatal(err)
	}
	// Binomial sd is sqrt(5000·0.3·0.7) ≈ 32; allow about 7 sd.
	if s, c := count(); s+c != draws || s < 1270 || s > 1730 {
		t.Errorf("30/70: %d stable, %d canary", s, c)
	}
	if err := r.SetWeights(0, 0); err != nil {
		t.Fatal(err)
	}
	if got := r.Pick(); got != "" {
		t.Errorf("0/0 picked %q", got)
	}
	if err := r.SetWeights(-1, 5); err == nil {
		t.Error("negative weight accepted")
	}
}

func TestRouterSplitIsDeterministic(t *testing.T) {
	seq := func() []Role {
		r := newRouter(t, "http://127.0.0.1:1", "http://127.0.0.1:2", 50, 50)
		out := make([]Role, 200)
		for i := range out {
			out[i] = r.Pick()
		}
		return out
	}
	a, b := seq(), seq()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d differs with the same seed: %s vs %s", i, a[i], b[i])
		}
	}
}

func TestRouterRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:80", "ftp://x", "http://"} {
		if _, err := NewRouter(RouterConfig{StableURL: u, CanaryURL: "http://127.0.0.1:1"}); err == nil {
			t.Errorf("NewRouter accepted stable URL %q", u)
		}
	}
}

// TestRouterAndLoadGenerator runs the whole demo path on loopback: load
// generator → router → stable/canary servers.
func TestRouterAndLoadGenerator(t *testing.T) {
	stable := startServer(t, RoleStable, "v1", fast(), 10)
	broken := fast()
	broken.ErrorRate = 1
	canary := startServer(t, RoleCanary, "v2", broken, 11)
	r := newRouter(t, stable.URL(), canary.URL(), 100, 0)
	front := httptest.NewServer(r)
	t.Cleanup(front.Close)

	got := runLoad(t, front.URL, 40)
	if got.Canary != 0 || got.Stable == 0 || got.Errors != 0 {
		t.Errorf("100/0: %+v", got)
	}
	if err := r.SetWeights(0, 100); err != nil {
		t.Fatal(err)
	}
	got = runLoad(t, front.URL, 40)
	if got.Stable != 0 || got.Canary == 0 || got.OK != 0 || got.Errors != got.Canary {
		t.Errorf("0/100 with a failing canary: %+v", got)
	}
	if s, c := r.Counts(); s == 0 || c == 0 {
		t.Errorf("router counts %d stable, %d canary", s, c)
	}
	if resp := post(t, front.URL); resp.Header.Get(HeaderBackend) != "canary" ||
		resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("direct request: status %d, backend %q", resp.StatusCode, resp.Header.Get(HeaderBackend))
	}
}

// runLoad runs a LoadGenerator until at least answers requests were
// answered, then stops it and returns its counts.
func runLoad(t *testing.T, url string, answers int64) LoadCounts {
	t.Helper()
	g, err := NewLoadGenerator(LoadConfig{URL: url + "/v1/completions", RPS: 400, Model: "demo-llm"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := g.Counts()
		if c.Stable+c.Canary >= answers {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("load generator stuck: %+v", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	c := g.Counts()
	if c.OK+c.Errors+c.Failed != c.Sent {
		t.Errorf("counts do not add up: %+v", c)
	}
	return c
}

func TestSimulateIsDeterministicAndLognormal(t *testing.T) {
	b := Behaviour{LatencyMedian: 300 * time.Millisecond, LatencySigma: 0.5,
		TTFTMedian: 50 * time.Millisecond, TTFTSigma: 0.4, ErrorRate: 0.1,
		PredictionClasses: []float64{0.7, 0.2, 0.1}}
	mk := func() *Server {
		s, err := NewServer(ServerConfig{ModelName: "m", Version: "v1", Role: RoleStable,
			Behaviour: b, Rand: rand.New(rand.NewPCG(7, 7))})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1, s2 := mk(), mk()
	const n = 20000
	lat := make([]float64, n)
	var failed int
	classes := make([]int, 3)
	for i := range n {
		o1, o2 := s1.Simulate(), s2.Simulate()
		if o1 != o2 {
			t.Fatalf("draw %d differs with the same seed: %+v vs %+v", i, o1, o2)
		}
		lat[i] = o1.Latency.Seconds()
		if o1.Failed {
			failed++
		} else {
			classes[o1.Class]++
			if o1.TTFT > o1.Latency {
				t.Fatalf("ttft %v exceeds latency %v", o1.TTFT, o1.Latency)
			}
		}
	}
	sort.Float64s(lat)
	if med := lat[n/2]; med < 0.28 || med > 0.32 {
		t.Errorf("median latency %.3fs, want about 0.30s", med)
	}
	if rate := float64(failed) / n; rate < 0.09 || rate > 0.11 {
		t.Errorf("error rate %.3f, want about 0.1", rate)
	}
	ok := float64(n - failed)
	if p := float64(classes[0]) / ok; p < 0.67 || p > 0.73 {
		t.Errorf("class 0 share %.3f, want about 0.7", p)
	}
}

func TestLatencyMixture(t *testing.T) {
	b := Behaviour{LatencyMixture: []LatencyComponent{
		{Weight: 0.9, Median: 100 * time.Millisecond, Sigma: 0.1},
		{Weight: 0.1, Median: 10 * time.Second, Sigma: 0.1},
	}}
	rnd := rand.New(rand.NewPCG(9, 9))
	slow := 0
	const n = 10000
	for range n {
		if b.draw(rnd).Latency > time.Second {
			slow++
		}
	}
	if slow < 800 || slow > 1200 {
		t.Errorf("%d of %d requests in the slow component, want about 1000", slow, n)
	}
}
