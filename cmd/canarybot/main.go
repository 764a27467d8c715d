// Command canarybot rolls ML models out through Git: each canary step is a
// commit, Argo CD applies it, gates judge it, and the next commit advances
// or reverts.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/canarybot/canarybot/pkg/redact"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries an exit code without printing anything more.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx)
	var ee *exitError
	switch {
	case err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil:
		// SIGTERM or Ctrl-C: a clean shutdown. Git holds everything; the
		// next run goes on from there.
		fmt.Fprintln(os.Stderr, "stopped")
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case err != nil:
		// A URL given on the command line may carry a credential, and
		// every client quotes the URL it dialled in its errors.
		fmt.Fprintln(os.Stderr, "error:", redact.URL(err.Error()))
		os.Exit(1)
	}
}

// globals are the flags every command shares.
type globals struct {
	logLevel  string
	logFormat string
	stdout    io.Writer
	stderr    io.Writer
}

// logger is the logger every command logs through, on stderr: text
// (key=value) or JSON lines (--log-format json, for log collectors), with
// the credentials of URLs hidden either way.
func (g *globals) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: redactAttr}
	switch g.logFormat {
	case "text", "": // the flag's default
		return slog.New(slog.NewTextHandler(g.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json or text", g.logFormat)
}

// redactAttr hides the credentials of any URL in a log message or value:
// a string, an error, or anything printed through its String method.
// (Attrs inside groups come here one by one.)
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	var s string
	switch v := a.Value.Any().(type) {
	case string:
		s = v
	case error, fmt.Stringer:
		if a.Value.Kind() != slog.KindAny {
			return a // a time or a duration
		}
		s = fmt.Sprint(v) // as the handler would print it, nil receivers included
	default:
		return a
	}
	if red := redact.URL(s); red != s {
		a.Value = slog.StringValue(red)
	}
	return a
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "canarybot",
		Short:         "Progressive delivery of ML models through Git and Argo CD",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format on stderr: text (key=value) or json (one object a line)")
	// A bad --log-level or --log-format stops any command before it starts,
	// whether or not it logs.
	root.PersistentPreRunE = func(*cobra.Command, []string) error { _, err := g.logger(); return err }
	root.AddCommand(newValidate(g), newStatus(g), newDemo(g), newReconcile(g), newServe(g), newVersion(g))
	root.AddCommand(newSimulate(g))
	root.AddCommand(newRetry(g), newPlan(g), newImport(g))
	root.AddCommand(newControls(g)...)
	root.AddCommand(newBench(g), newBenchFleet(g))
	return root
}

func newVersion(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(g.stdout, "canarybot", version)
			return nil
		},
	}
}
