package benchfleet

import (
	"fmt"
	"io"
	"math"
	"time"
)

// Costs are the per-transition and per-plan costs one fleet run measured.
type Costs struct {
	Plans, Transitions int
	// CPUPerTransition is canarybot's CPU time per transition committed;
	// ServerCPUPerTransition the Git server's (git http-backend).
	CPUPerTransition, ServerCPUPerTransition time.Duration
	PushesPerTransition                      float64
	// BaseRSSKiB is the process before any plan; RSSPerPlanKiB what each
	// plan added to the peak.
	BaseRSSKiB, RSSPerPlanKiB int64
	// TransitionsPerSecond is what one repository sustained.
	TransitionsPerSecond float64
}

// Costs derives the per-transition and per-plan costs of the run.
func (r *Result) Costs() Costs {
	c := Costs{Plans: r.Plans, Transitions: r.Transitions, BaseRSSKiB: r.BaseRSSKiB}
	if r.Transitions == 0 || r.Plans == 0 {
		return c
	}
	n := time.Duration(r.Transitions)
	c.CPUPerTransition, c.ServerCPUPerTransition = r.CPU/n, r.ServerCPU/n
	c.PushesPerTransition = float64(r.Pushes) / float64(r.Transitions)
	c.RSSPerPlanKiB = max(r.PeakRSSKiB-r.BaseRSSKiB, 0) / int64(r.Plans)
	if r.Elapsed > 0 {
		c.TransitionsPerSecond = float64(r.Transitions) / r.Elapsed.Seconds()
	}
	return c
}

// ProjectionConfig is the fleet projected to.
type ProjectionConfig struct {
	Plans, Repos int
	// StepInterval is how often a plan in a rollout commits a transition
	// (its analysis window); the projection assumes every plan rolls out
	// at once, the peak.
	StepInterval time.Duration
	// CoresPerReplica and MemoryPerReplicaKiB size one replica.
	CoresPerReplica     int
	MemoryPerReplicaKiB int64
	// StepCPU, when set, is the CPU of one step measured on the big
	// repository: a second estimate, for repositories that large.
	StepCPU time.Duration
}

// Projection is what the fleet would need, computed, not measured.
type Projection struct {
	TransitionsPerMinute, PerRepoPerSecond float64
	Cores, ServerCores, BigRepoCores       float64
	MemoryKiB                              int64
	PushesPerMinute, PushesPerMinuteMax    float64
	Replicas                               int
}

// Project scales the measured costs to p.
func Project(c Costs, p ProjectionConfig) Projection {
	var pr Projection
	if p.StepInterval <= 0 || p.Repos <= 0 {
		return pr
	}
	perSecond := float64(p.Plans) / p.StepInterval.Seconds()
	pr.TransitionsPerMinute = perSecond * 60
	pr.PerRepoPerSecond = perSecond / float64(p.Repos)
	pr.Cores = perSecond * c.CPUPerTransition.Seconds()
	pr.ServerCores = perSecond * c.ServerCPUPerTransition.Seconds()
	pr.BigRepoCores = perSecond * p.StepCPU.Seconds()
	pr.MemoryKiB = c.BaseRSSKiB + c.RSSPerPlanKiB*int64(p.Plans)
	pr.PushesPerMinute = pr.TransitionsPerMinute * min(c.PushesPerTransition, 1)
	pr.PushesPerMinuteMax = pr.TransitionsPerMinute
	cores := max(pr.Cores, pr.BigRepoCores)
	if p.CoresPerReplica > 0 && p.MemoryPerReplicaKiB > 0 {
		byCPU := math.Ceil(cores / float64(p.CoresPerReplica) / 0.7) // 70% busy at the peak
		byMem := math.Ceil(float64(pr.MemoryKiB) / float64(p.MemoryPerReplicaKiB))
		pr.Replicas = int(max(byCPU, byMem, 1))
	}
	return pr
}

// ReportProjection prints the projection, labelled as such. Its one target
// is that each repository's share stays within what one repository
// sustained in the fleet section.
func ReportProjection(w io.Writer, c Costs, p ProjectionConfig, pr Projection) bool {
	s := newSection(w, "PROJECTION (computed from the fleet section's measured costs, not measured): %d plans across %d repositories",
		p.Plans, p.Repos)
	s.note("assumes every plan rolls out at once, one transition per plan every %s (the peak);", p.StepInterval)
	s.note("inputs: %s CPU, %.3f pushes per transition, %d KiB per plan over a %s base, %d plans in one repository",
		ms(c.CPUPerTransition), c.PushesPerTransition, c.RSSPerPlanKiB, mib(c.BaseRSSKiB), c.Plans)
	s.info("transitions per minute, all repositories", fmt.Sprintf("%.0f", pr.TransitionsPerMinute))
	s.check("transitions per second, per repository", fmt.Sprintf("%.2f", pr.PerRepoPerSecond),
		fmt.Sprintf("≤ %.1f (measured, 1 repo)", c.TransitionsPerSecond), c.TransitionsPerSecond > 0 && pr.PerRepoPerSecond <= c.TransitionsPerSecond)
	s.info("canarybot CPU cores", fmt.Sprintf("%.2f", pr.Cores))
	if p.StepCPU > 0 {
		s.info("canarybot CPU cores, repos as big as the big one", fmt.Sprintf("%.2f", pr.BigRepoCores))
	}
	s.info("Git server CPU cores (GitHub's side)", fmt.Sprintf("%.2f", pr.ServerCores))
	s.info("memory, one process for every plan", mib(pr.MemoryKiB))
	s.info("pushes per minute (measured batching)", fmt.Sprintf("%.0f", pr.PushesPerMinute))
	s.info("pushes per minute (no batching, upper bound)", fmt.Sprintf("%.0f", pr.PushesPerMinuteMax))
	if pr.Replicas > 0 {
		s.info(fmt.Sprintf("replicas of %d cores, %s (sharded by repository)", p.CoresPerReplica, mib(p.MemoryPerReplicaKiB)),
			fmt.Sprint(pr.Replicas))
	}
	return s.ok
}
