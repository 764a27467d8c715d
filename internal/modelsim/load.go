package modelsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// LoadConfig configures a LoadGenerator.
type LoadConfig struct {
	// URL receives POST requests, e.g. router.URL() + "/v1/completions".
	URL string
	// RPS is the request rate, per second of Clock time.
	RPS float64
	// Model is sent in each request's body.
	Model string
	// MaxInFlight bounds concurrent requests; a request due while the
	// bound is reached is dropped and counted. Default 256.
	MaxInFlight int
	// Client defaults to a client with a 30 s timeout.
	Client *http.Client
	// Clock paces the requests; nil means wall time.
	Clock  canary.Clock
	Logger *slog.Logger
}

// LoadCounts are a LoadGenerator's tallies.
type LoadCounts struct {
	// Sent requests, answered or not.
	Sent int64
	// Stable and Canary count answers by the HeaderBackend they carry.
	Stable, Canary int64
	// OK counts 2xx answers, Errors other statuses, Failed transport
	// errors, Dropped requests not sent because MaxInFlight were running.
	OK, Errors, Failed, Dropped int64
}

// LoadGenerator sends a steady rate of requests from a goroutine.
type LoadGenerator struct {
	cfg  LoadConfig
	body []byte
	sem  chan struct{}

	sent, stable, canary, ok, errs, failed, dropped atomic.Int64
}

// NewLoadGenerator checks cfg and fills in defaults.
func NewLoadGenerator(cfg LoadConfig) (*LoadGenerator, error) {
	if cfg.URL == "" {
		return nil, errors.New("new load generator: empty URL")
	}
	if !(cfg.RPS > 0) || math.IsInf(cfg.RPS, 0) || cfg.RPS > 1e6 {
		return nil, fmt.Errorf("new load generator: rps %v is not in (0, 1e6]", cfg.RPS)
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Clock == nil {
		cfg.Clock = canary.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	body := fmt.Sprintf(`{"model":%q,"prompt":"Say hello.","max_tokens":16}`, cfg.Model)
	return &LoadGenerator{cfg: cfg, body: []byte(body), sem: make(chan struct{}, cfg.MaxInFlight)}, nil
}

// Run sends requests at the configured rate until ctx is done, then waits
// for those in flight (they are cancelled with ctx) and returns ctx's
// error.
func (g *LoadGenerator) Run(ctx context.Context) error {
	interval := time.Duration(float64(time.Second) / g.cfg.RPS)
	start := g.cfg.Clock.Now()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := int64(1); ; i++ {
		select {
		case g.sem <- struct{}{}:
			g.sent.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-g.sem }()
				g.send(ctx)
			}()
		default:
			g.dropped.Add(1)
		}
		// Pace against the start so that slow iterations do not drift.
		now := g.cfg.Clock.Now()
		wait := start.Add(time.Duration(i) * interval).Sub(now)
		if wait < -time.Second {
			// Far behind (a stall): start afresh rather than burst.
			start, i, wait = now, 0, 0
		}
		if wait <= 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-g.cfg.Clock.After(wait):
		}
	}
}

// send makes one request and counts its answer.
func (g *LoadGenerator) send(ctx context.Context) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.URL, bytes.NewReader(g.body))
	if err != nil {
		g.failed.Add(1)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			g.cfg.Logger.DebugContext(ctx, "request failed", "error", err)
		}
		g.failed.Add(1)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	switch Role(resp.Header.Get(HeaderBackend)) {
	case RoleStable:
		g.stable.Add(1)
	case RoleCanary:
		g.canary.Add(1)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		g.ok.Add(1)
	} else {
		g.errs.Add(1)
	}
}

// Counts returns the tallies so far.
func (g *LoadGenerator) Counts() LoadCounts {
	return LoadCounts{
		Sent: g.sent.Load(), Stable: g.stable.Load(), Canary: g.canary.Load(),
		OK: g.ok.Load(), Errors: g.errs.Load(), Failed: g.failed.Load(), Dropped: g.dropped.Load(),
	}
}
