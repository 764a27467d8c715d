package benchfleet

import (
	"context"
	"strings"
	"testing"
	"time"
)

// People push with the git CLI to the branch while plans roll out over
// real overlays: every human commit lands and stays reachable, the files
// they wrote (outside the overlays and in the human half of them) are
// intact at the end, no update rewound the branch, and every rollout
// completed with each transition once.
func TestHumansCommitDuringRollouts(t *testing.T) {
	cfg := HumansConfig{Env: Env{Dir: t.TempDir(), Timeout: 3 * time.Minute}, Plans: 4, Steps: 2, Workers: 4, Commits: 9,
		Pause: 20 * time.Millisecond, Sync: 2 * time.Second}
	res, err := RunHumans(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Promoted != 4 || !res.Once(4*3) {
		t.Errorf("%d promoted, transitions %+v", res.Promoted, res.Count)
	}
	if res.Commits != 9 || len(res.Unreachable) > 0 || len(res.Clobbered) > 0 {
		t.Errorf("%d human commits, unreachable %v, changed %v", res.Commits, res.Unreachable, res.Clobbered)
	}
	if a := res.Audit; a == nil || !a.FastForwardOnly() || a.Updates < res.Commits {
		t.Errorf("audit %+v", a)
	}
	var out strings.Builder
	if !ReportHumans(&out, cfg, res) {
		t.Errorf("a target was missed:\n%s", out.String())
	}
	for _, want := range []string{"human commits reachable from the final head", "9/9", "receive.denyNonFastForwards on the remote", "PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())
}
