// Package promserver runs a real Prometheus server, the Debian/upstream
// `prometheus` binary, on a free loopback port: for `canarybot simulate
// --metrics prometheus` (pkg/sim/promreplay), the demo and integration
// tests. It writes a scrape configuration for the given targets, starts
// the binary and waits until Prometheus reports ready; Backfill turns
// OpenMetrics text into TSDB blocks with the real `promtool`.
package promserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotInstalled means the prometheus binary could not be found.
var ErrNotInstalled = errors.New("prometheus binary not found in PATH: install it with " +
	"`sudo apt-get install -y --no-install-recommends prometheus` (Debian/Ubuntu) " +
	"or download it from https://prometheus.io/download/")

// Defaults for unset Options fields.
const (
	DefaultScrapeInterval = time.Second
	DefaultJobName        = "canarybot"
	DefaultStartTimeout   = 30 * time.Second
	// stopTimeout is how long Stop waits after SIGTERM before killing.
	stopTimeout = 10 * time.Second
	// portAttempts bounds retries when the picked port is taken meanwhile.
	portAttempts = 3
)

// Options configure Start.
type Options struct {
	// Dir holds prometheus.yml and the TSDB (Dir/data). Empty means a new
	// temporary directory, removed by Stop.
	Dir string
	// ScrapeInterval is the global scrape and evaluation interval;
	// DefaultScrapeInterval (1s) when zero.
	ScrapeInterval time.Duration
	// Targets are scraped at http://Addr/metrics, in one job.
	Targets []Target
	// JobName names that job; DefaultJobName when empty.
	JobName string
	// Logger receives Prometheus's log lines at Debug; nil discards them.
	Logger *slog.Logger
	// Binary is the prometheus executable; empty looks up "prometheus" in
	// PATH.
	Binary string
	// StartTimeout bounds the wait for readiness; DefaultStartTimeout
	// when zero.
	StartTimeout time.Duration
	// TSDBPath, when set, is an existing TSDB (for example one Backfill
	// wrote) that Prometheus serves instead of Dir/data; Stop leaves it.
	TSDBPath string
	// Retention is --storage.tsdb.retention.time; Prometheus's default
	// (15d) when zero. Backfilled data older than it is deleted at start.
	Retention time.Duration
	// LookbackDelta is --query.lookback-delta; Prometheus's default (5m)
	// when zero.
	LookbackDelta time.Duration
}

func (o Options) withDefaults() Options {
	if o.ScrapeInterval == 0 {
		o.ScrapeInterval = DefaultScrapeInterval
	}
	if o.JobName == "" {
		o.JobName = DefaultJobName
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	return o
}

// Server is a running Prometheus.
type Server struct {
	url     string
	cmd     *exec.Cmd
	output  *logTail
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed

	removeDir string // temporary directory Stop removes, if any

	stopOnce sync.Once
	stopErr  error
}

// Start writes the configuration, starts Prometheus on a free 127.0.0.1
// port and returns once /-/ready answers 200. The process ends when ctx is
// canceled or Stop is called; call Stop in any case to wait for it and
// remove the temporary directory. When the binary is missing the error
// wraps ErrNotInstalled, which says how to install it.
func Start(ctx context.Context, o Options) (*Server, error) {
	o = o.withDefaults()
	bin, err := lookBinary(o.Binary)
	if err != nil {
		return nil, err
	}
	cfg, err := RenderConfig(o)
	if err != nil {
		return nil, err
	}
	dir, removeDir := o.Dir, ""
	if dir == "" {
		if dir, err = os.MkdirTemp("", "promserver-"); err != nil {
			return nil, fmt.Errorf("create prometheus directory: %w", err)
		}
		removeDir = dir
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create prometheus directory: %w", err)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return nil, errors.Join(fmt.Errorf("write %s: %w", cfgPath, err), removeAll(removeDir))
	}
	for attempt := 1; ; attempt++ {
		s, err := launch(ctx, bin, dir, cfgPath, o)
		if err == nil {
			s.removeDir = removeDir
			return s, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == portAttempts {
			return nil, errors.Join(err, removeAll(removeDir))
		}
	}
}

// errPortInUse marks a launch that lost the race for its port.
var errPortInUse = errors.New("listen address already in use")

// launch starts one Prometheus process on a fresh port and waits for it.
func launch(ctx context.Context, bin, dir, cfgPath string, o Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.CommandContext(ctx, bin, launchArgs(o, dir, cfgPath, addr)...)
	cmd.Dir = dir
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopTimeout
	out := newLogTail(o.Logger)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &Server{url: "http://" + addr, cmd: cmd, output: out, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	o.Logger.Debug("prometheus started", "pid", cmd.Process.Pid, "url", s.url, "dir", dir)
	if err := s.waitReady(ctx, o.StartTimeout); err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	return s, nil
}

// launchArgs are Prometheus's command-line flags for o.
func launchArgs(o Options, dir, cfgPath, addr string) []string {
	tsdb := o.TSDBPath
	if tsdb == "" {
		tsdb = filepath.Join(dir, "data")
	}
	args := []string{"--config.file=" + cfgPath, "--storage.tsdb.path=" + tsdb, "--web.listen-address=" + addr}
	if o.Retention > 0 {
		args = append(args, "--storage.tsdb.retention.time="+promDuration(o.Retention))
	}
	if o.LookbackDelta > 0 {
		args = append(args, "--query.lookback-delta="+promDuration(o.LookbackDelta))
	}
	return args
}

// waitReady polls /-/ready until it answers 200, the process exits, or
// the timeout passes.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(ctx, client, s.url+"/-/ready") {
			return nil
		}
		select {
		case <-s.done:
			err := fmt.Errorf("prometheus exited before it was ready: %w\n%s", s.waitErr, s.output.Tail())
			if strings.Contains(s.output.Tail(), "address already in use") {
				err = fmt.Errorf("%w: %w", errPortInUse, err)
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("wait for prometheus at %s to be ready: %w\n%s", s.url, ctx.Err(), s.output.Tail())
		case <-tick.C:
		}
	}
}

func ready(ctx context.Context, c *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// URL is the server's base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.url }

// Output returns the tail of Prometheus's log output, for diagnostics.
func (s *Server) Output() string { return s.output.Tail() }

// Stop sends SIGTERM, kills the process if it has not exited within 10s,
// waits for it, and removes the temporary directory. It is safe to call
// more than once; later calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		var errs []error
		select {
		case <-s.done:
		default:
			if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
				errs = append(errs, fmt.Errorf("signal prometheus: %w", err))
			}
			select {
			case <-s.done:
			case <-time.After(stopTimeout):
				errs = append(errs, fmt.Errorf("prometheus did not stop within %s after SIGTERM; killed", stopTimeout))
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
		errs = append(errs, removeAll(s.removeDir))
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// lookBinary finds the prometheus executable.
func lookBinary(bin string) (string, error) {
	if bin == "" {
		bin = "prometheus"
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("look up %q: %w", bin, ErrNotInstalled)
	}
	return p, nil
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before Prometheus binds it; Start retries then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("release port %d: %w", port, err)
	}
	return port, nil
}

func removeAll(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
