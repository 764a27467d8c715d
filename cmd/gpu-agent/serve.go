package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gpu"
	"github.com/canarybot/canarybot/pkg/gpu/agent"
)

func (o *options) run(ctx context.Context, log *slog.Logger) (err error) {
	if o.interval <= 0 {
		return fmt.Errorf("--interval %v: must be positive", o.interval)
	}
	if o.history < o.interval {
		return fmt.Errorf("--history %v: must be at least --interval %v", o.history, o.interval)
	}
	col := gpu.NewHostCollector(gpu.WithProcRoot(o.procRoot), gpu.WithPodsLogDir(o.podsLogDir))
	defer func() {
		if cerr := col.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	if o.once {
		return o.printOnce(ctx, col, o.stdout)
	}
	for _, dir := range []struct{ flag, path string }{{"--proc-root", o.procRoot}, {"--pods-log-dir", o.podsLogDir}} {
		if _, err := os.Stat(dir.path); dir.path != "" && err != nil {
			log.Warn("GPU processes will lack pods", "flag", dir.flag, "err", err)
		}
	}
	a, err := agent.New(col, agent.Config{Node: o.node, Interval: o.interval, History: o.history, Clock: canary.SystemClock{}, Log: log})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	if err := a.Register(reg); err != nil {
		return err
	}
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register runtime metrics: %w", err)
		}
	}
	return serve(ctx, o.listen, a, reg, o.stdout)
}

// serve serves a's handler on listen and runs a until ctx ends or serving
// fails.
func serve(ctx context.Context, listen string, a *agent.Agent, reg *prometheus.Registry, out io.Writer) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{Handler: a.Handler(reg), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if !errors.Is(err, http.ErrServerClosed) {
			cancel()
		}
		serveErr <- err
	}()
	fmt.Fprintf(out, "gpu-agent serving on http://%s (%s, %s)\n", ln.Addr(), agent.MetricsPath, gpu.APIPath)
	runErr := a.Run(ctx)
	shut, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if err := srv.Shutdown(shut); err != nil {
		return errors.Join(runErr, fmt.Errorf("shut down the gpu-agent server: %w", err))
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(runErr, fmt.Errorf("serve on %s: %w", ln.Addr(), err))
	}
	return runErr
}

// printOnce prints one snapshot as JSON. A partial snapshot is printed
// and its error returned.
func (o *options) printOnce(ctx context.Context, col *gpu.Collector, out io.Writer) error {
	if err := col.Open(ctx); err != nil {
		return err
	}
	snap, err := col.Snapshot(ctx)
	if err != nil && len(snap.Devices) == 0 {
		return err
	}
	snap.Node = o.node
	if snap.Devices == nil {
		snap.Devices = []gpu.DeviceSample{}
	}
	b, merr := json.MarshalIndent(snap, "", "  ")
	if merr != nil {
		return fmt.Errorf("encode snapshot: %w", merr)
	}
	fmt.Fprintln(out, string(b))
	return err
}
