package benchfleet

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// ReplicaConfig is one replica of the replicas section: a whole canarybot
// fleet, in its own OS process, over its own clone of the remote.
type ReplicaConfig struct {
	URL, Dir string
	// Name signs the replica's commits.
	Name    string
	Workers int
}

// Args are the replica's command-line arguments, for ParseReplicaArgs in
// the re-executed process.
func (c ReplicaConfig) Args() []string {
	return []string{"--remote", c.URL, "--dir", c.Dir, "--name", c.Name, "--workers", strconv.Itoa(c.Workers)}
}

// ParseReplicaArgs reads what Args wrote.
func ParseReplicaArgs(args []string) (ReplicaConfig, error) {
	var c ReplicaConfig
	fs := flag.NewFlagSet("replica", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.URL, "remote", "", "the remote to drive")
	fs.StringVar(&c.Dir, "dir", "", "the replica's clone")
	fs.StringVar(&c.Name, "name", "replica", "commit author")
	fs.IntVar(&c.Workers, "workers", 16, "plans reconciled at once")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("replica: %w", err)
	}
	if c.URL == "" || c.Dir == "" || fs.NArg() > 0 {
		return c, fmt.Errorf("replica: want --remote URL --dir DIR [--name N] [--workers N], got %q", args)
	}
	return c, nil
}

// RunReplica drives every plan of c.URL, with the stand-in edges, until
// ctx ends (SIGTERM), logging warnings and errors to log.
func RunReplica(ctx context.Context, c ReplicaConfig, log io.Writer) error {
	l := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn})).With("replica", c.Name)
	d, err := startDriver(ctx, driverConfig{URL: c.URL, Dir: c.Dir, Author: c.Name, Workers: c.Workers, Log: l})
	if err != nil {
		return err
	}
	l.Warn("replica serving", "remote", c.URL)
	<-ctx.Done()
	d.stop()
	return nil
}
