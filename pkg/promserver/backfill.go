package promserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
)

// ErrPromtoolNotInstalled means the promtool binary could not be found.
var ErrPromtoolNotInstalled = errors.New("promtool binary not found in PATH: it ships with Prometheus; install it with " +
	"`sudo apt-get install -y --no-install-recommends prometheus` (Debian/Ubuntu) " +
	"or download Prometheus from https://prometheus.io/download/")

// BackfillOptions configure Backfill.
type BackfillOptions struct {
	// Input is an OpenMetrics text file with explicit timestamps, ending
	// in # EOF.
	Input string
	// DataDir is the TSDB directory the blocks are written to; it is
	// created when missing. Serve it with Options.TSDBPath.
	DataDir string
	// Promtool is the promtool executable; empty looks up "promtool" in
	// PATH.
	Promtool string
	// Logger receives promtool's output at Debug; nil discards it.
	Logger *slog.Logger
}

// Backfill writes TSDB blocks from an OpenMetrics file with the real
// `promtool tsdb create-blocks-from openmetrics`. When promtool is missing
// the error wraps ErrPromtoolNotInstalled, which says how to install it.
func Backfill(ctx context.Context, o BackfillOptions) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	name := o.Promtool
	if name == "" {
		name = "promtool"
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("look up %q: %w", name, ErrPromtoolNotInstalled)
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return fmt.Errorf("create TSDB directory: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin, "tsdb", "create-blocks-from", "openmetrics", o.Input, o.DataDir)
	cmd.SysProcAttr = sysProcAttr()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		o.Logger.Debug("promtool output", "line", line)
	}
	if err != nil {
		return fmt.Errorf("backfill %s into %s: %w\npromtool output:\n%s", o.Input, o.DataDir, err, tail(out.Bytes()))
	}
	return nil
}

// tail is the last maxTail bytes of out.
func tail(out []byte) string {
	if len(out) > maxTail {
		out = out[len(out)-maxTail:]
	}
	return string(bytes.TrimRight(out, "\n"))
}
