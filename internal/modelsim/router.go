package modelsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
)

// HeaderBackend is the response header in which the Router names the
// backend that served a request: "stable" or "canary".
const HeaderBackend = "X-Canarybot-Backend"

// RouterConfig configures a Router.
type RouterConfig struct {
	// StableURL and CanaryURL are the backends' base URLs.
	StableURL, CanaryURL string
	// StableWeight and CanaryWeight are the initial relative weights.
	StableWeight, CanaryWeight int
	// Rand drives the split. Nil means a fixed seed (3, 4).
	Rand *rand.Rand
	// Transport reaches the backends; nil means http.DefaultTransport.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// CanaryHeaders, when set, is a header route: a request carrying every
	// one of these headers with exactly these values goes to the canary,
	// whatever the weights, as a setHeaderRoute step's Exact match would.
	CanaryHeaders map[string]string
}

// Router is a simulated gateway: an http.Handler that forwards each request
// to the stable or the canary backend with probability proportional to the
// weights, like an HTTPRoute's weighted backendRefs. With both weights zero
// it answers 503.
type Router struct {
	logger  *slog.Logger
	proxies [2]*httputil.ReverseProxy
	counts  [2]atomic.Int64
	http    httpServer
	headers map[string]string

	mu      sync.Mutex
	rnd     *rand.Rand
	weights [2]int
}

// NewRouter returns a Router over two backends.
func NewRouter(cfg RouterConfig) (*Router, error) {
	r := &Router{logger: cfg.Logger, rnd: cfg.Rand, headers: maps.Clone(cfg.CanaryHeaders)}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	if r.rnd == nil {
		r.rnd = rand.New(rand.NewPCG(3, 4))
	}
	for i, raw := range []string{cfg.StableURL, cfg.CanaryURL} {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("new router: backend %s URL %q is not an http(s) URL", roleOf(i), raw)
		}
		p := httputil.NewSingleHostReverseProxy(u)
		p.Transport = cfg.Transport
		role := roleOf(i)
		p.ErrorHandler = func(w http.ResponseWriter, req *http.Request, err error) {
			lvl := slog.LevelWarn
			if req.Context().Err() != nil {
				lvl = slog.LevelDebug // the client went away, e.g. at shutdown
			}
			r.logger.Log(req.Context(), lvl, "backend unreachable", "backend", role, "error", err)
			w.WriteHeader(http.StatusBadGateway)
		}
		r.proxies[i] = p
	}
	if err := r.SetWeights(cfg.StableWeight, cfg.CanaryWeight); err != nil {
		return nil, fmt.Errorf("new router: %w", err)
	}
	return r, nil
}

// roleOf maps a backend index to its role.
func roleOf(i int) Role {
	if i == 1 {
		return RoleCanary
	}
	return RoleStable
}

// SetWeights changes the split from the next request on. Weights are
// relative and must not be negative.
func (r *Router) SetWeights(stable, canary int) error {
	if stable < 0 || canary < 0 {
		return fmt.Errorf("set weights %d/%d: weights must not be negative", stable, canary)
	}
	if stable+canary < 0 {
		return errors.New("set weights: sum overflows")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.weights = [2]int{stable, canary}
	return nil
}

// Weights returns the stable and canary weights.
func (r *Router) Weights() (stable, canary int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.weights[0], r.weights[1]
}

// Pick draws the backend for one request, or "" when both weights are zero.
// ServeHTTP calls it once per request; tests call it to check the split.
func (r *Router) Pick() Role {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := r.weights[0] + r.weights[1]
	switch {
	case total == 0:
		return ""
	case r.weights[1] == 0:
		return RoleStable
	case r.weights[0] == 0:
		return RoleCanary
	}
	if r.rnd.IntN(total) < r.weights[0] {
		return RoleStable
	}
	return RoleCanary
}

// ServeHTTP forwards the request to the canary when it matches the header
// route, else to the picked backend, and names the backend in the
// HeaderBackend response header.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	role := RoleCanary
	if !r.headerRouted(req) {
		role = r.Pick()
	}
	if role == "" {
		http.Error(w, "no backend has weight", http.StatusServiceUnavailable)
		return
	}
	i := 0
	if role == RoleCanary {
		i = 1
	}
	r.counts[i].Add(1)
	w.Header().Set(HeaderBackend, string(role))
	r.proxies[i].ServeHTTP(w, req)
}

// headerRouted reports whether req matches the header route.
func (r *Router) headerRouted(req *http.Request) bool {
	if len(r.headers) == 0 {
		return false
	}
	for k, v := range r.headers {
		if req.Header.Get(k) != v {
			return false
		}
	}
	return true
}

// Counts returns how many requests went to each backend.
func (r *Router) Counts() (stable, canary int64) {
	return r.counts[0].Load(), r.counts[1].Load()
}

// Start listens on addr ("" means 127.0.0.1:0) and serves until ctx is done
// or Close is called.
func (r *Router) Start(ctx context.Context, addr string) error {
	if err := r.http.start(ctx, addr, r); err != nil {
		return fmt.Errorf("start router: %w", err)
	}
	r.logger.InfoContext(ctx, "router listening", "url", r.URL())
	return nil
}

// URL is the base URL once started.
func (r *Router) URL() string { return r.http.url() }

// Close stops serving at once.
func (r *Router) Close() error { return r.http.close() }
