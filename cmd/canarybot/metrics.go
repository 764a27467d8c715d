package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/metrics"
)

// newRecorder registers the rollout metrics (pkg/metrics) on reg.
func newRecorder(reg prometheus.Registerer) (*metrics.Recorder, error) {
	return metrics.New(reg, metrics.Options{Clock: canary.SystemClock{}})
}

// checkMetricsListen refuses reconcile flag combinations where
// --metrics-listen cannot work.
func (o *reconcileOptions) checkMetricsListen() error {
	switch {
	case o.metricsListen == "":
		return nil
	case o.once:
		return errors.New("--metrics-listen cannot be used with --once: --once reconciles once and exits, " +
			"before anything could scrape it")
	case o.metricsListen == o.hooks.listen:
		return fmt.Errorf("--metrics-listen %s: --listen serves the registry webhooks there; give another address", o.metricsListen)
	}
	return nil
}

// startMetrics serves GET /metrics from reg and GET /healthz on addr until
// ctx ends, and returns the mux, for more handlers. It serves from the
// start, before any leader election: a standby replica answers too.
func startMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return mux, nil
}

// recorder checks --metrics-listen, registers the rollout metrics and,
// with --metrics-listen, serves them until ctx ends.
func (o *reconcileOptions) recorder(ctx context.Context, log *slog.Logger) (*metrics.Recorder, error) {
	if err := o.checkMetricsListen(); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	rec, err := newRecorder(reg)
	if err != nil {
		return nil, err
	}
	if o.metricsListen != "" {
		if _, err := startMetrics(ctx, o.metricsListen, reg, log); err != nil {
			return nil, err
		}
	}
	return rec, nil
}
