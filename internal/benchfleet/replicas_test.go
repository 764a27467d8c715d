package benchfleet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// replicaEnv makes the test binary a replica process (see TestMain).
const replicaEnv = "BENCHFLEET_TEST_REPLICA"

// TestMain lets the test binary re-execute itself as a replica process.
func TestMain(m *testing.M) {
	if os.Getenv(replicaEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		c, err := ParseReplicaArgs(os.Args[1:])
		if err == nil {
			err = RunReplica(ctx, c, os.Stderr)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// Two replica processes drive the same plans with no lock; one is killed
// with SIGKILL mid-run. Every plan is promoted, each transition committed
// exactly once, the branch only ever moved forward, and the report says so.
func TestTwoReplicaProcessesOneKilled(t *testing.T) {
	cfg := ReplicasConfig{Env: Env{Dir: t.TempDir(), Timeout: 3 * time.Minute}, Plans: 6, Steps: 3, Workers: 4, KillAt: 0.3,
		Command: func(ctx context.Context, c ReplicaConfig) *exec.Cmd {
			cmd := exec.CommandContext(ctx, os.Args[0], c.Args()...)
			cmd.Env = append(os.Environ(), replicaEnv+"=1")
			return cmd
		}}
	res, err := RunReplicas(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := 6 * 4
	if res.Promoted != 6 || !res.Once(want) {
		t.Errorf("%d promoted, transitions %+v", res.Promoted, res.Count)
	}
	if len(res.Replicas) != 2 || !res.Replicas[0].Killed || res.Replicas[1].Killed || res.KilledAt <= 0 || res.KilledAt >= want {
		t.Errorf("replicas %+v, killed at %d", res.Replicas, res.KilledAt)
	}
	if res.ByAuthor["replica-b"] == 0 || res.ByAuthor["replica-a"]+res.ByAuthor["replica-b"] != want {
		t.Errorf("by author %v", res.ByAuthor)
	}
	if res.Audit == nil || !res.Audit.FastForwardOnly() {
		t.Errorf("audit %+v", res.Audit)
	}
	var out strings.Builder
	if !ReportReplicas(&out, cfg, res) {
		t.Errorf("a target was missed:\n%s", out.String())
	}
	t.Log("\n" + out.String())
}

func TestParseReplicaArgs(t *testing.T) {
	c := ReplicaConfig{URL: "http://127.0.0.1:1/gitops.git", Dir: "/tmp/x", Name: "replica-a", Workers: 3}
	got, err := ParseReplicaArgs(c.Args())
	if err != nil || got != c {
		t.Errorf("got %+v, %v", got, err)
	}
	if _, err := ParseReplicaArgs([]string{"--dir", "x"}); err == nil {
		t.Error("no --remote: want an error")
	}
}
