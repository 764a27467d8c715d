package modelsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Response headers a Server sets on every completion.
const (
	HeaderVersion = "X-Model-Version"
	HeaderRole    = "X-Model-Role"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// ModelName is the model_name label and the model the API reports.
	ModelName string
	// Version is the version label, e.g. the artifact's tag.
	Version string
	// Role is the role label: stable or canary.
	Role      Role
	Behaviour Behaviour
	// Rand drives every draw. Nil means a fixed seed (1, 2).
	Rand *rand.Rand
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Server simulates one vLLM-like model server. It serves:
//
//	POST /v1/completions, POST /v1/chat/completions   simulated inference
//	GET  /v1/models                                    the served model
//	GET  /health                                       200
//	GET  /metrics                                      Prometheus metrics
//
// It is an http.Handler; Start also serves it on its own loopback listener.
type Server struct {
	model   string
	role    Role
	logger  *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics
	mux     *http.ServeMux
	http    httpServer

	mu        sync.Mutex
	rnd       *rand.Rand
	version   string
	behaviour Behaviour
	// gen counts version changes; requests drawn under an older one are
	// not recorded, as a restarted pod's in-flight requests would be lost.
	gen uint64
}

// NewServer returns a Server that is not listening yet.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.ModelName == "" {
		return nil, errors.New("new model server: empty model name")
	}
	if cfg.Role != RoleStable && cfg.Role != RoleCanary {
		return nil, fmt.Errorf("new model server: role %q is neither stable nor canary", cfg.Role)
	}
	if err := cfg.Behaviour.Validate(); err != nil {
		return nil, fmt.Errorf("new model server %s: %w", cfg.ModelName, err)
	}
	s := &Server{
		model:     cfg.ModelName,
		role:      cfg.Role,
		logger:    cfg.Logger,
		reg:       prometheus.NewRegistry(),
		rnd:       cfg.Rand,
		version:   cfg.Version,
		behaviour: cfg.Behaviour,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.rnd == nil {
		s.rnd = rand.New(rand.NewPCG(1, 2))
	}
	s.metrics = newMetrics(s.reg)
	s.metrics.start(s.labelsLocked(), s.behaviour)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /v1/completions", s.handleCompletion)
	s.mux.HandleFunc("POST /v1/chat/completions", s.handleCompletion)
	s.mux.HandleFunc("GET /v1/models", s.handleModels)
	s.mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Start listens on addr ("" means 127.0.0.1:0) and serves until ctx is done
// or Close is called.
func (s *Server) Start(ctx context.Context, addr string) error {
	if err := s.http.start(ctx, addr, s); err != nil {
		return fmt.Errorf("start model server %s/%s: %w", s.model, s.role, err)
	}
	s.logger.InfoContext(ctx, "model server listening", "model", s.model, "role", s.role, "url", s.URL())
	return nil
}

// URL is the base URL, e.g. http://127.0.0.1:41234, once started.
func (s *Server) URL() string { return s.http.url() }

// Close stops serving at once.
func (s *Server) Close() error { return s.http.close() }

// Gatherer exposes the server's metrics registry, e.g. to scrape it
// in-process.
func (s *Server) Gatherer() prometheus.Gatherer { return s.reg }

// Role is the server's side of the split.
func (s *Server) Role() Role { return s.role }

// Version is the version label now.
func (s *Server) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Behaviour is the behaviour now.
func (s *Server) Behaviour() Behaviour {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.behaviour
}

// SetBehaviour changes how the server behaves from the next request on.
func (s *Server) SetBehaviour(b Behaviour) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("set behaviour of %s/%s: %w", s.model, s.role, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behaviour = b
	s.metrics.setGauges(s.labelsLocked(), b)
	return nil
}

// Deploy switches the server to another model version, as a rollout of a
// new artifact would: the old version's series vanish, the new version's
// start at zero, and requests in flight are not recorded.
func (s *Server) Deploy(version string, b Behaviour) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("deploy %s to %s/%s: %w", version, s.model, s.role, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metrics.stop(s.labelsLocked())
	s.version, s.behaviour = version, b
	s.gen++
	s.metrics.start(s.labelsLocked(), b)
	return nil
}

// Simulate draws one request's outcome and records it at once, without
// HTTP or waiting: a simulator running on simulated time calls it.
func (s *Server) Simulate() Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.behaviour.draw(s.rnd)
	s.metrics.record(s.labelsLocked(), o)
	return o
}

// labelsLocked returns the current labels; s.mu must be held.
func (s *Server) labelsLocked() labels {
	return labels{model: s.model, version: s.version, role: string(s.role)}
}

// begin draws a request's outcome and counts it as running.
func (s *Server) begin() (Outcome, labels, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.behaviour.draw(s.rnd)
	l := s.labelsLocked()
	s.metrics.running.WithLabelValues(l.values()...).Inc()
	return o, l, s.gen
}

// end records a finished request, or only forgets it when gave up is true
// or the version changed meanwhile.
func (s *Server) end(o Outcome, l labels, gen uint64, gaveUp bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return
	}
	s.metrics.running.WithLabelValues(l.values()...).Dec()
	if !gaveUp {
		s.metrics.record(l, o)
	}
}

// handleCompletion serves one simulated inference request.
func (s *Server) handleCompletion(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	o, l, gen := s.begin()
	text := s.Behaviour().answer(promptOf(body))
	if err := sleep(r.Context(), o.Latency); err != nil {
		s.end(o, l, gen, true)
		return
	}
	s.end(o, l, gen, false)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HeaderVersion, l.version)
	w.Header().Set(HeaderRole, l.role)
	if o.Failed {
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"object": "error", "type": "InternalServerError", "code": http.StatusInternalServerError,
			"message": "simulated failure",
		})
		return
	}
	_ = json.NewEncoder(w).Encode(completion{
		Object: "text_completion", Model: s.model,
		Choices:    []choice{{Index: 0, Text: text, FinishReason: finishedReasonStop}},
		Version:    l.version,
		Role:       l.role,
		Prediction: o.Class,
	})
}

// completion is an OpenAI-style completion with the simulator's extras.
type completion struct {
	Object     string   `json:"object"`
	Model      string   `json:"model"`
	Choices    []choice `json:"choices"`
	Version    string   `json:"version"`
	Role       string   `json:"role"`
	Prediction int      `json:"prediction"`
}

type choice struct {
	Index        int    `json:"index"`
	Text         string `json:"text"`
	FinishReason string `json:"finish_reason"`
}

// handleModels lists the served model.
func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"object": "list",
		"data":   []map[string]any{{"id": s.model, "object": "model", "version": s.Version()}},
	})
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
