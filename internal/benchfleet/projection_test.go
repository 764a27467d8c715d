package benchfleet

import (
	"strings"
	"testing"
	"time"
)

// The projection scales the measured per-transition and per-plan costs:
// 10,000 plans stepping every 5 minutes are 2,000 transitions a minute.
func TestProjection(t *testing.T) {
	r := &Result{Count: Count{Transitions: 600}, Plans: 100, Elapsed: 60 * time.Second, Pushes: 150,
		CPU: 30 * time.Second, ServerCPU: 12 * time.Second, BaseRSSKiB: 50 << 10, PeakRSSKiB: 150 << 10}
	c := r.Costs()
	if c.CPUPerTransition != 50*time.Millisecond || c.ServerCPUPerTransition != 20*time.Millisecond ||
		c.PushesPerTransition != 0.25 || c.RSSPerPlanKiB != 1024 || c.TransitionsPerSecond != 10 {
		t.Fatalf("costs %+v", c)
	}
	p := ProjectionConfig{Plans: 10000, Repos: 100, StepInterval: 5 * time.Minute, CoresPerReplica: 2,
		MemoryPerReplicaKiB: 1 << 20, StepCPU: 300 * time.Millisecond}
	pr := Project(c, p)
	near := func(got, want float64) bool { return got > want-1e-6 && got < want+1e-6 }
	if !near(pr.TransitionsPerMinute, 2000) || !near(pr.PerRepoPerSecond, 2000.0/60/100) || !near(pr.Cores, 2000.0/60*0.05) ||
		!near(pr.ServerCores, 2000.0/60*0.02) || !near(pr.BigRepoCores, 10) || !near(pr.PushesPerMinute, 500) || !near(pr.PushesPerMinuteMax, 2000) {
		t.Errorf("projection %+v", pr)
	}
	if pr.MemoryKiB != 50<<10+10000*1024 {
		t.Errorf("memory %d KiB", pr.MemoryKiB)
	}
	// CPU needs ceil(10 cores / 2 per replica / 70% busy) = 8; memory,
	// ceil(9.8 GiB / 1 GiB) = 10.
	if pr.Replicas != 10 {
		t.Errorf("%d replicas, want 10", pr.Replicas)
	}
	var out strings.Builder
	if !ReportProjection(&out, c, p, pr) {
		t.Errorf("per-repository rate over the measured one:\n%s", out.String())
	}
	for _, want := range []string{"PROJECTION", "not measured", "2000", "replicas of 2 cores"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
