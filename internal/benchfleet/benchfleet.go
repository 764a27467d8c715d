// Package benchfleet measures canarybot driving many plans (`make
// bench-fleet`), each section against a real bare repository served over
// smart HTTP by `git http-backend` that refuses every non-fast-forward
// update:
//
//   - fleet: one process drives N plans of one repository to promotion;
//   - humans: people push commits with the git CLI during the rollouts;
//   - replicas: two OS processes drive the same plans, one is SIGKILLed;
//   - big repository: one canary step on 2,000 commits and 500 overlays,
//     beside the same step done with the git CLI;
//   - projection: what 10,000 plans in 100 repositories would need.
//
// The real fleet runner, engines and gitops commits run throughout; the
// stand-ins are for what lies outside Git (an Argo CD that has synced
// every commit, gates that pass, a registry offering one new version per
// model) and, where said, a renderer writing one bot-owned file per plan.
package benchfleet

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Config sizes the fleet section.
type Config struct {
	Env
	Plans, Steps, Workers int
}

// Result is what the fleet section measured.
type Result struct {
	Count
	Plans, Promoted int
	Elapsed         time.Duration
	// Latencies are decision → commit pushed, one per pushed transition.
	Latencies []time.Duration
	// BaseRSSKiB is the resident set before the repository was seeded;
	// PeakRSSKiB the peak during the run.
	BaseRSSKiB, PeakRSSKiB int64
	Pushes                 int
	// CPU is this process's CPU time over the run; ServerCPU that of the
	// git http-backend processes serving it (GitHub's, in production).
	CPU, ServerCPU time.Duration
	Audit          *audit
}

// Run seeds a repository with cfg.Plans plans of cfg.Steps steps and
// drives them all to promotion with one fleet.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	dir, cleanup, err := cfg.workDir("fleet")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	res := &Result{Plans: cfg.Plans, BaseRSSKiB: resetPeakRSS()}
	cpu0 := cpuNow()
	srv, err := newServer(ctx, dir, []seedCommit{{Message: "seed", Files: planFiles(cfg.Plans, cfg.Steps, "overlays")}})
	if err != nil {
		return nil, err
	}
	defer srv.close()
	runCtx, cancel := cfg.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	d, err := startDriver(runCtx, driverConfig{URL: srv.URL, Dir: filepath.Join(dir, "clone"), Author: "canarybot", Workers: cfg.Workers})
	if err != nil {
		return nil, err
	}
	want := cfg.Plans * (cfg.Steps + 1)
	res.Promoted, err = waitPromoted(runCtx, cfg.Env, d.repo, noRefresh, cfg.Plans, want, d.rec.committed)
	d.stop()
	res.Elapsed = time.Since(start)
	used := cpuNow().since(cpu0)
	res.CPU, res.ServerCPU = used.self, used.children
	res.Latencies = d.rec.latencies()
	res.Pushes = int(srv.pushes.Load())
	res.PeakRSSKiB = peakRSS()
	c, cerr := countTransitions(ctx, d.repo)
	res.Count = c
	var aerr error
	res.Audit, aerr = srv.audit(ctx)
	return res, errors.Join(err, cerr, aerr)
}

// planFiles are plans model-0000… of steps steps each, their overlays
// under overlays/ (for the stand-in renderer, which needs none) or
// manifests/overlays/ (for pkg/kustomize).
func planFiles(plans, steps int, overlays string) map[string][]byte {
	files := make(map[string][]byte, plans)
	for i := range plans {
		name := modelName(i)
		files[".canarybot/plans/"+name+".yaml"] = []byte(planYAML(name, overlays+"/"+name, steps))
	}
	return files
}

func modelName(i int) string { return fmt.Sprintf("model-%04d", i) }

// planYAML is a kserve plan of steps setWeight steps ending at 100%.
func planYAML(name, overlay string, steps int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: %[1]s}
spec:
  model:
    name: %[1]s
    source: {static: {uri: "oci://registry.local/%[1]s@sha256:%[2]s", version: "2.0.0"}}
  traffic: {mode: kserve, kserve: {inferenceService: %[1]s}}
  overlay: %[3]s
  argocd: {application: %[1]s}
  steps:
`, name, strings.Repeat("2", 64), overlay)
	for i := 1; i <= steps; i++ {
		fmt.Fprintf(&b, "  - setWeight: %d\n", 100*i/steps)
	}
	return b.String()
}
