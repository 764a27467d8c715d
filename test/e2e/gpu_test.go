//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/internal/e2e/traffic"
	"github.com/canarybot/canarybot/internal/gpusim"
	"github.com/canarybot/canarybot/pkg/canary"
)

// gpuPlan adds GPU health to a plan: the gpu-agent's series through
// Prometheus, the predictor pods as the sides, a background Xid gate, and
// a bake at the first weight for it to watch.
func gpuPlan(plan string) string {
	plan = strings.Replace(plan, "  steps:\n", `  signals:
    preset: vllm
    stable: {role: stable}
    canary: {role: canary}
    step: 2s
    gpu:
      stable: {namespace: models, pod: "~qwen-stable-predictor-.*"}
      canary: {namespace: models, pod: "~qwen-canary-predictor-.*"}
  backgroundAnalysis: {gates: [gpu-xid]}
  steps:
`, 1)
	plan = strings.Replace(plan, "  - analysis: {gates: [latency-vs-stable]}\n",
		"  - pause: {duration: 2m}\n  - analysis: {gates: [latency-vs-stable]}\n", 1)
	return strings.Replace(plan, "  rollback:", `  - name: gpu-xid
    gauge: {signal: xid, codes: [48, 79]}
  rollback:`, 1)
}

// TestGPUFaultRevertsOnTheRealStack: while v2 bakes at 30%, the canary
// pod's GPU raises Xid 79 (fallen off the bus). The gpu-agent on the node
// (the real agent over go-nvml's mock) counts it, Prometheus scrapes it,
// the background gpu-xid gate sees it on the canary's GPU, and canarybot
// reverts; Argo CD syncs the revert. Stable's GPU and a GPU no pod uses
// raise nothing the gate counts.
func TestGPUFaultRevertsOnTheRealStack(t *testing.T) {
	node := gpusim.Start(t,
		gpusim.Pod{GPU: 0, Namespace: "models", Name: "qwen-stable-predictor-7d9f8-abcde", UID: "7c1e0c55-0000-4000-8000-000000000001", PID: 4101},
		gpusim.Pod{GPU: 1, Namespace: "models", Name: "qwen-canary-predictor-5b6c4-fghij", UID: "7c1e0c55-0000-4000-8000-000000000002", PID: 4102})
	r, _ := startRollout(t, &rollout{t: t, mode: canary.ModeGateway, gpu: node})
	eng := r.engine()
	go func() { _ = eng.Run(r.ctx) }()
	v2 := r.push("2.0.0")
	r.applier.Register(v2.Location(), traffic.Model{Tag: "2.0.0", Behaviour: good()})
	r.eventually("v2 serving 30% of traffic", 3*time.Minute, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, tr := range r.reports {
			if st := tr.r.State; st != nil && st.Status.Candidate.URI == v2.URI && st.Status.StepIndex >= 1 {
				return true
			}
		}
		return false
	})
	node.RaiseXid(2, 79) // a GPU no pod uses
	time.Sleep(3 * time.Second)
	raised := time.Now()
	node.RaiseXid(1, 79)
	st := r.waitPhase(v2, canary.PhaseReverted, 2*time.Minute)
	if !strings.Contains(st.Status.Reason, "gpu-xid") || !strings.Contains(st.Status.Reason, "Xid 79") {
		t.Fatalf("reverted for %q, want the gpu-xid gate's Xid 79", st.Status.Reason)
	}
	pushed, sha := r.revertCommit()
	if pushed.Before(raised) {
		t.Fatalf("reverted at %s, before the canary's GPU raised its Xid at %s (GPU 2's Xid is nobody's)", pushed, raised)
	}
	waitReadyApp(t, r.ctx, r.argo, r.plan().Spec.ArgoCD.Application, sha, 2*time.Minute)
	synced := time.Now()
	t.Logf("Xid 79 on the canary's GPU → revert commit pushed: %s", pushed.Sub(raised).Round(10*time.Millisecond))
	t.Logf("revert pushed → Argo CD synced and healthy: %s", synced.Sub(pushed).Round(10*time.Millisecond))
}

// revertCommit returns when the revert commit was pushed, and its SHA.
func (r *rollout) revertCommit() (time.Time, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tr := range r.reports {
		if tr.r.Decision.Action == canary.ActRevert && tr.r.Commit.SHA != "" {
			return tr.at, tr.r.Commit.SHA
		}
	}
	r.t.Fatal("no revert was committed")
	return time.Time{}, ""
}
