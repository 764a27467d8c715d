package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// The demo is killed with -9 in the middle of v2's rollout and started
// again on the same --dir. It must resume from Git, finish both rollouts
// (v2 promoted, v3 reverted by the judge's screen gate, with its
// verdicts printed), and leave exactly one
// commit per transition. status must rebuild both rollouts from Git alone.
func TestDemoKillNineResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two whole rollouts against the real Prometheus (about 90 s); run without -short")
	}
	bin, dir := buildBinary(t), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	first := exec.CommandContext(ctx, bin, "demo", "--dir", dir)
	lines := startWithOutput(t, first)
	waitFor(t, lines, "advance  qwen step 3 ")
	if err := first.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	for range lines { // drained when the killed process's output closes
	}
	before := transitions(t, ctx, dir)
	if len(before) < 4 {
		t.Fatalf("only %d transitions before the kill", len(before))
	}

	second := exec.CommandContext(ctx, bin, "demo", "--dir", dir)
	out, err := second.CombinedOutput()
	if err != nil {
		t.Fatalf("resumed demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{"git: resuming from", "promote  qwen", "revert   qwen", "v3 reverted by gate screen", "confirm Successful: not worse: latency ratio", "gate screen failed: canary worse: "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("resumed demo output lacks %q:\n%s", want, out)
		}
	}
	after := transitions(t, ctx, dir)
	if strings.Join(after[:len(before)], ",") != strings.Join(before, ",") {
		t.Errorf("history before the kill was rewritten:\nbefore %v\nafter  %v", before, after)
	}
	checkOneCommitPerTransition(t, after)

	status, _, err := run(t, "status", "--repo", dir+"/gitops.git")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"qwen: Reverted", "stable:    2.0.0", "reverted:  3.0.0", "promote", "screen failed: canary worse"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
}

// transitions lists "action/step/artifact" for every bot commit, oldest first.
func transitions(t *testing.T, ctx context.Context, dir string) []string {
	t.Helper()
	r, err := gitops.OpenReadOnly(ctx, gitops.Options{URL: dir + "/gitops.git"})
	if err != nil {
		t.Fatal(err)
	}
	commits, err := r.Log(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(commits) - 1; i >= 0; i-- {
		c := commits[i]
		if _, ok := c.Trailer(canary.TrailerPlan); !ok {
			continue
		}
		a, _ := c.Trailer(canary.TrailerAction)
		s, _ := c.Trailer(canary.TrailerStep)
		art, _ := c.Trailer(canary.TrailerArtifact)
		out = append(out, fmt.Sprintf("%s/%s/%s", a, s, art))
	}
	return out
}

// checkOneCommitPerTransition: the whole history is adopt, then a v2
// rollout ending in promote, then a v3 rollout ending in revert, and no
// transition appears twice.
func checkOneCommitPerTransition(t *testing.T, ts []string) {
	t.Helper()
	seen := map[string]bool{}
	var actions []string
	for _, tr := range ts {
		if seen[tr] {
			t.Errorf("transition %s committed twice in %v", tr, ts)
		}
		seen[tr] = true
		actions = append(actions, strings.SplitN(tr, "/", 2)[0])
	}
	want := "adopt start advance advance advance advance advance advance advance promote start advance revert"
	if got := strings.Join(actions, " "); got != want {
		t.Errorf("transitions:\n got %s\nwant %s", got, want)
	}
}

func startWithOutput(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	go func() { _ = cmd.Wait(); pw.Close() }()
	return lines
}

func waitFor(t *testing.T, lines <-chan string, substr string) {
	t.Helper()
	var seen []string
	for l := range lines {
		seen = append(seen, l)
		if strings.Contains(l, substr) {
			return
		}
	}
	t.Fatalf("never saw %q; output:\n%s", substr, strings.Join(seen, "\n"))
}
