// Command gpu-agent serves one node's GPU health, read through NVML, as
// Prometheus metrics and as the JSON API (pkg/gpu/gpuapi) that canarybot's
// GPU gates read. It runs on every GPU node (manifests/gpu-agent). It is a
// command of its own, not a canarybot subcommand, so that go-nvml (cgo,
// lazily bound NVML symbols) is linked into this binary only.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/canarybot/canarybot/pkg/gpu"
	"github.com/canarybot/canarybot/pkg/gpu/agent"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// defaultListen is the gpu-agent's port: beside dcgm-exporter's 9400 and
// nvidia_gpu_exporter's 9835, so it can run with either.
const defaultListen = ":9836"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		stop()
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	listen, node, procRoot, podsLogDir string
	history, interval                  time.Duration
	once                               bool
	logLevel                           string
	stdout, stderr                     io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	o := &options{stdout: stdout, stderr: stderr}
	c := &cobra.Command{
		Use:   "gpu-agent",
		Short: "Serve this node's GPU health (NVML) as Prometheus metrics and JSON for canarybot's GPU gates",
		Long: "gpu-agent reads every GPU on this node through NVML on each scrape (cached for 2s) and every\n" +
			"--interval: memory, utilization, temperature, power, clock event reasons, ECC errors, Xid\n" +
			"events and per-process GPU memory mapped to Kubernetes pods. It serves canarybot_gpu_* metrics\n" +
			"on /metrics and, for gates that query a node directly, GET " + gpu.APIPath + " (the latest\n" +
			"snapshot) and GET " + gpu.APIPath + "?since=<RFC 3339> (the snapshots kept since then).\n" +
			"Without NVML it still serves, with canarybot_gpu_up 0. Deploy it with manifests/gpu-agent.",
		Version:       version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := o.logger()
			if err != nil {
				return err
			}
			return o.run(cmd.Context(), log)
		},
	}
	c.SetOut(stdout)
	c.SetErr(stderr)
	f := c.Flags()
	f.StringVar(&o.listen, "listen", defaultListen, "serve metrics and the JSON API on this address")
	f.StringVar(&o.node, "node-name", os.Getenv("NODE_NAME"), "the node label and JSON node field (default $NODE_NAME)")
	f.StringVar(&o.procRoot, "proc-root", gpu.DefaultProcRoot, "the host's /proc, to map GPU processes to pods; empty turns the mapping off")
	f.StringVar(&o.podsLogDir, "pods-log-dir", gpu.DefaultPodsLogDir, "the kubelet's pod log directory, to name the pods")
	f.DurationVar(&o.history, "history", agent.DefaultHistory, "how long the JSON history keeps snapshots")
	f.DurationVar(&o.interval, "interval", agent.DefaultInterval, "how often to take a snapshot for the history")
	f.BoolVar(&o.once, "once", false, "print one JSON snapshot and exit")
	f.StringVar(&o.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	return c
}

func (o *options) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	return slog.New(slog.NewTextHandler(o.stderr, &slog.HandlerOptions{Level: lvl})), nil
}
