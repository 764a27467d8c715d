package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canarybot/canarybot/pkg/statuspage"
)

// statusPage registers the status page on the --metrics-listen port,
// which stays inside the cluster; without that port there is none. The
// webhook port (--listen) faces GitHub, and the page would tell anyone
// there every model, digest and gate number.
func (o *serveOptions) statusPage(log *slog.Logger, repos func() []statuspage.Repo) error {
	if o.opsMux == nil {
		return nil
	}
	return registerStatusPage(o.opsMux, log, repos)
}

// registry is serve's Prometheus registry. With --metrics-listen it is
// also served there, with GET /healthz and later the status page (kept
// off --listen, the webhook port GitHub must reach), from the start: a --leader-elect
// standby, which does not listen on --listen until it leads, answers
// there too, for a liveness probe and for Prometheus.
func (o *serveOptions) registry(ctx context.Context, log *slog.Logger) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	if o.metricsListen == "" {
		return reg, nil
	}
	if o.metricsListen == o.listen {
		return nil, fmt.Errorf("--metrics-listen %s: --listen serves the webhooks there; give another address", o.metricsListen)
	}
	mux, err := startMetrics(ctx, o.metricsListen, reg, log)
	if err != nil {
		return nil, err
	}
	o.opsMux = mux
	return reg, nil
}
