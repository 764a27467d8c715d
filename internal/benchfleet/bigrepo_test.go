package benchfleet

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A small big repository: every step, canarybot's and the git CLI's,
// lands on the remote, fast-forward only, and the report prints both
// ways and their ratio.
func TestBigRepoSteps(t *testing.T) {
	cfg := BigRepoConfig{Env: Env{Dir: t.TempDir(), Timeout: 2 * time.Minute}, Commits: 60, Overlays: 12, Steps: 4}
	res, err := RunBigRepo(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Landed != 8 || len(res.Bot.Total) != 4 || len(res.CLI.Total) != 4 || res.Bot.CPU <= 0 {
		t.Errorf("result %+v", res)
	}
	for i, d := range res.Bot.Total {
		if res.Bot.Render[i] <= 0 || res.Bot.Render[i] >= d {
			t.Errorf("step %d: render %s of %s", i, res.Bot.Render[i], d)
		}
	}
	if res.Audit == nil || !res.Audit.FastForwardOnly() || res.Audit.Updates != 8 {
		t.Errorf("audit %+v", res.Audit)
	}
	var out strings.Builder
	ReportBigRepo(&out, cfg, res)
	for _, want := range []string{"steps landed on the remote", "8/8", "canarybot step, p99", "ratio canarybot / git CLI, whole step, p50",
		"git CLI step, p50", "PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())
}

// The seeded history has the commits asked for, each a real change, and
// its first commit every overlay with its base and component.
func TestBigHistory(t *testing.T) {
	h, err := bigHistory(30, 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 30 {
		t.Fatalf("%d commits", len(h))
	}
	for i := range 8 {
		name, _ := bigOverlay(i, 8)
		for _, p := range []string{"manifests/base/" + name + "/kustomization.yaml", overlayDir(name) + "/kustomization.yaml",
			overlayDir(name) + "/canarybot/kustomization.yaml"} {
			if _, ok := h[0].Files[p]; !ok {
				t.Errorf("first commit lacks %s", p)
			}
		}
	}
	if _, tp := bigOverlay(3, 8); tp != gatewayTemplate {
		t.Error("overlay 3 is not a gateway model")
	}
	for _, c := range h[1:] {
		if len(c.Files) != 1 {
			t.Errorf("commit %q changes %d files", c.Message, len(c.Files))
		}
	}
}
