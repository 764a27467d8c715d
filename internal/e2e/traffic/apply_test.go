package traffic_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/internal/e2e/traffic"
	"github.com/canarybot/canarybot/internal/modelsim"
)

// fast is a behaviour with sub-millisecond latencies and no errors.
func fast() modelsim.Behaviour {
	return modelsim.Behaviour{
		LatencyMedian: 200 * time.Microsecond, LatencySigma: 0.2,
		TTFTMedian: 50 * time.Microsecond, TTFTSigma: 0.2, KVCacheUsage: 0.4,
	}
}

// sim is a stable and a canary model server behind a router, all serving
// on loopback, both starting at version 1.0.0.
type sim struct {
	stable, canary *modelsim.Server
	router         *modelsim.Router
}

func startSim(t *testing.T) sim {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var s sim
	for i, role := range []modelsim.Role{modelsim.RoleStable, modelsim.RoleCanary} {
		srv, err := modelsim.NewServer(modelsim.ServerConfig{
			ModelName: "qwen", Version: "1.0.0", Role: role, Behaviour: fast(),
			Rand: rand.New(rand.NewPCG(uint64(i), 7)),
		})
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		if err := srv.Start(ctx, ""); err != nil {
			t.Fatalf("start %s server: %v", role, err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		if role == modelsim.RoleStable {
			s.stable = srv
		} else {
			s.canary = srv
		}
	}
	r, err := modelsim.NewRouter(modelsim.RouterConfig{StableURL: s.stable.URL(), CanaryURL: s.canary.URL(), StableWeight: 100})
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	if err := r.Start(ctx, ""); err != nil {
		t.Fatalf("start router: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	s.router = r
	return s
}

func (s sim) applier(t *testing.T) *traffic.Applier {
	t.Helper()
	a, err := traffic.NewApplier(traffic.ApplierConfig{
		Stable: s.stable, Canary: s.canary, Router: s.router,
		Models: map[string]traffic.Model{qwenA: {Tag: "1.0.0", Behaviour: fast()}, qwenB: {Tag: "2.0.0", Behaviour: fast()}},
	})
	if err != nil {
		t.Fatalf("NewApplier: %v", err)
	}
	return a
}

// served sends n requests through the router and counts the answers by
// role/version response headers.
func (s sim) served(t *testing.T, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		resp, err := http.Post(s.router.URL()+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"hi"}`))
		if err != nil {
			t.Fatalf("POST via router: %v", err)
		}
		_ = resp.Body.Close()
		out[resp.Header.Get(modelsim.HeaderRole)+"/"+resp.Header.Get(modelsim.HeaderVersion)]++
	}
	return out
}

func TestApplierMovesServersAndRouter(t *testing.T) {
	tests := []struct {
		name                 string
		split                traffic.Split
		stableVer, canaryVer string
		stableW, canaryW     int
		served               map[string]int // of 20 requests, when set
	}{
		{"no canary", traffic.Split{StableURI: qwenA, CanaryURI: qwenA}, "1.0.0", "1.0.0", 100, 0,
			map[string]int{"stable/1.0.0": 20}},
		{"canary at 30%", traffic.Split{StableURI: qwenA, CanaryURI: qwenB, CanaryPercent: 30}, "1.0.0", "2.0.0", 70, 30, nil},
		{"canary at 100%", traffic.Split{StableURI: qwenA, CanaryURI: qwenB, CanaryPercent: 100}, "1.0.0", "2.0.0", 0, 100,
			map[string]int{"canary/2.0.0": 20}},
		{"promoted", traffic.Split{StableURI: qwenB, CanaryURI: qwenB}, "2.0.0", "2.0.0", 100, 0,
			map[string]int{"stable/2.0.0": 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t)
			if err := s.applier(t).Apply(tc.split); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if sv, cv := s.stable.Version(), s.canary.Version(); sv != tc.stableVer || cv != tc.canaryVer {
				t.Errorf("versions stable %s canary %s, want %s and %s", sv, cv, tc.stableVer, tc.canaryVer)
			}
			if sw, cw := s.router.Weights(); sw != tc.stableW || cw != tc.canaryW {
				t.Errorf("router weights %d/%d, want %d/%d", sw, cw, tc.stableW, tc.canaryW)
			}
			if tc.served == nil {
				return
			}
			got := s.served(t, 20)
			if len(got) != len(tc.served) {
				t.Fatalf("served %v, want %v", got, tc.served)
			}
			for k, n := range tc.served {
				if got[k] != n {
					t.Errorf("served %v, want %v", got, tc.served)
				}
			}
		})
	}
}

func TestApplierRefusesBadSplits(t *testing.T) {
	tests := []struct {
		name    string
		split   traffic.Split
		wantErr error
	}{
		{"unknown canary model", traffic.Split{StableURI: qwenA, CanaryURI: "oci://elsewhere@sha256:00", CanaryPercent: 10}, traffic.ErrUnknownModel},
		{"unknown stable model", traffic.Split{StableURI: "hf://Qwen/Qwen2.5-0.5B-Instruct", CanaryURI: qwenB, CanaryPercent: 10}, traffic.ErrUnknownModel},
		{"percent above 100", traffic.Split{StableURI: qwenA, CanaryURI: qwenB, CanaryPercent: 101}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t)
			err := s.applier(t).Apply(tc.split)
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("Apply: %v, want error %v", err, tc.wantErr)
			}
			// A refused split changes nothing.
			if sv, cv := s.stable.Version(), s.canary.Version(); sv != "1.0.0" || cv != "1.0.0" {
				t.Errorf("versions moved to %s/%s", sv, cv)
			}
			if sw, cw := s.router.Weights(); sw != 100 || cw != 0 {
				t.Errorf("weights moved to %d/%d", sw, cw)
			}
		})
	}
}

func TestApplierRegisterAddsModels(t *testing.T) {
	s := startSim(t)
	a := s.applier(t)
	const uriC = "oci://ghcr.io/example/models/qwen@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	split := traffic.Split{StableURI: qwenA, CanaryURI: uriC, CanaryPercent: 10}
	if err := a.Apply(split); !errors.Is(err, traffic.ErrUnknownModel) {
		t.Fatalf("Apply before Register: %v, want ErrUnknownModel", err)
	}
	a.Register(uriC, traffic.Model{Tag: "3.0.0", Behaviour: fast()})
	if err := a.Apply(split); err != nil {
		t.Fatalf("Apply after Register: %v", err)
	}
	if v := s.canary.Version(); v != "3.0.0" {
		t.Errorf("canary version %s, want 3.0.0", v)
	}
}

func TestNewApplierChecksRoles(t *testing.T) {
	s := startSim(t)
	tests := []struct {
		name string
		cfg  traffic.ApplierConfig
	}{
		{"roles swapped", traffic.ApplierConfig{Stable: s.canary, Canary: s.stable, Router: s.router}},
		{"no router", traffic.ApplierConfig{Stable: s.stable, Canary: s.canary}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := traffic.NewApplier(tc.cfg); err == nil {
				t.Error("NewApplier accepted the config")
			}
		})
	}
}
