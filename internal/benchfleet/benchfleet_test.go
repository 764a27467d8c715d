package benchfleet

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A small fleet run: every plan promoted, each transition committed once,
// latencies recorded for each, fewer pushes than commits when plans move
// together, and the report says so.
func TestRunSmallFleet(t *testing.T) {
	cfg := Config{Env: Env{Dir: t.TempDir(), Timeout: 2 * time.Minute}, Plans: 8, Steps: 2, Workers: 4}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Promoted != 8 || !res.Once(8*3) || res.Transitions != 8*3 {
		t.Errorf("result %+v", res)
	}
	if len(res.Latencies) != res.Transitions || res.Pushes == 0 || res.Pushes > res.Transitions {
		t.Errorf("%d latencies, %d pushes for %d transitions", len(res.Latencies), res.Pushes, res.Transitions)
	}
	if c := res.Costs(); c.CPUPerTransition <= 0 || c.PushesPerTransition <= 0 || c.PushesPerTransition > 1 {
		t.Errorf("costs %+v", c)
	}
	var out strings.Builder
	Report(&out, cfg, res)
	for _, want := range []string{"plans promoted", "8/8", "24, each once", "decision → commit pushed, p99", "peak RSS",
		"canarybot CPU per transition", "RSS per plan"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if (strings.Contains(line, "transition commits") || strings.Contains(line, "not fast-forwards")) && !strings.HasSuffix(line, "PASS") {
			t.Errorf("correctness row missed: %s", line)
		}
	}
}
