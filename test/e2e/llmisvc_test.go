//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/canarybot/canarybot/internal/e2e/kservesim"
	"github.com/canarybot/canarybot/internal/e2e/traffic"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/kustomize"
)

// llmisvcTrafficYAML is the qwen-llm plan's traffic in mode llmisvc, as in
// examples/qwen-llmisvc.yaml: the stable member's inline route splits
// between the two members' InferencePools.
const llmisvcTrafficYAML = `traffic:
    mode: llmisvc
    llmisvc:
      router: qwen-llm-stable
      stable: {name: qwen-llm-stable, backend: qwen-llm-stable-inference-pool}
      canary: {name: qwen-llm-canary, backend: qwen-llm-canary-inference-pool}
  overlay: manifests/overlays/qwen-llm`

// TestLLMISVCRolloutOnTheRealStack rolls the qwen-llm plan out in traffic
// mode llmisvc on the real stack, with KServe v0.19.0's
// LLMInferenceService CRD installed in the kube-apiserver: v2 is promoted,
// v3 (40% slower) is reverted. Every split the bot committed is read back
// from the kube-apiserver once Argo CD has synced it, and after each
// outcome the members' spec.model.uri and every rule's weights are read
// back as raw objects. Argo CD assesses the LLMInferenceServices' health
// with the check in manifests/argocd, and kservesim reports them Ready.
func TestLLMISVCRolloutOnTheRealStack(t *testing.T) {
	r, v1 := newRollout(t, canary.ModeLLMISVC)
	// Argo CD judges LLMInferenceServices with the health check the
	// repository ships (manifests/argocd); the stand-in for KServe's
	// controller reports each generation Ready.
	go func() { _ = kservesim.RunLLMISVC(r.ctx, r.dyn(), kservesim.Options{Namespace: "models"}) }()
	live := r.recordLive()
	r.wantLLMISVCObjects(v1, v1)
	eng := r.engine()
	go func() { _ = eng.Run(r.ctx) }()
	v2 := r.promoteV2()
	r.wantLLMISVCObjects(v2, v2)
	r.revertV3()
	r.wantLLMISVCObjects(v2, v2)
	r.wantCommittedSplitsLive(live)
	r.wantLLMISVCHealthAssessed()
}

// wantLLMISVCHealthAssessed reads the Application from the kube-apiserver:
// Argo CD must judge each LLMInferenceService Healthy with the shipped
// health check (without one it records no health for them).
func (r *rollout) wantLLMISVCHealthAssessed() {
	r.t.Helper()
	gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
	var why string
	r.eventually("both LLMInferenceServices Healthy in Argo CD", 30*time.Second, func() bool {
		app, err := r.dyn().Resource(gvr).Namespace("argocd").Get(r.ctx, r.plan().Spec.ArgoCD.Application, metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false
		}
		resources, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
		var healthy []string
		why = ""
		for _, res := range resources {
			m, _ := res.(map[string]any)
			if m["kind"] != kustomize.KindLLMISVC {
				continue
			}
			h, _, _ := unstructured.NestedString(m, "health", "status")
			msg, _, _ := unstructured.NestedString(m, "health", "message")
			if h == "Healthy" {
				healthy = append(healthy, fmt.Sprint(m["name"]))
			} else {
				why += fmt.Sprintf("%s: %q %q; ", m["name"], h, msg)
			}
		}
		r.t.Logf("Argo CD health: %d Healthy %s", len(healthy), why)
		return len(healthy) == 2
	})
}

// liveSplits are the splits read from the kube-apiserver, in order.
type liveSplits struct {
	mu     sync.Mutex
	splits []traffic.Split
}

func (l *liveSplits) get() []traffic.Split {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.splits)
}

// recordLive watches the plan's LLMInferenceServices in the kube-apiserver
// and records every split they express.
func (r *rollout) recordLive() *liveSplits {
	l := &liveSplits{}
	cfg := traffic.Config{Namespace: "models", Traffic: r.plan().Spec.Traffic, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	go func() {
		err := traffic.Watch(r.ctx, r.dyn(), cfg, func(s traffic.Split) error {
			l.mu.Lock()
			l.splits = append(l.splits, s)
			l.mu.Unlock()
			return nil
		})
		if err != nil && r.ctx.Err() == nil {
			r.t.Errorf("watch live splits: %v", err)
		}
	}()
	return l
}

// wantCommittedSplitsLive checks that the split of every commit the bot
// pushed was, in order, the live split in the kube-apiserver: the engine
// moves on only after Argo CD reports the commit synced, so each one must
// have been read back before the next. Consecutive commits of one split
// count once.
func (r *rollout) wantCommittedSplitsLive(live *liveSplits) {
	r.t.Helper()
	var want []traffic.Split
	r.mu.Lock()
	for _, tr := range r.reports {
		rep := tr.r
		if !rep.Decision.Action.Commits() || rep.Commit.NoOp || rep.Commit.SHA == "" || rep.State == nil {
			continue
		}
		d := canary.DesiredOf(rep.State)
		s := traffic.Split{StableURI: d.Stable, CanaryURI: d.Canary, CanaryPercent: d.CanaryWeight}
		if s.CanaryURI == "" {
			s.CanaryURI = s.StableURI
		}
		// A commit that changes no weight or artifact (a step passed)
		// leaves the objects as they are: the watch sees one split.
		if len(want) == 0 || want[len(want)-1] != s {
			want = append(want, s)
		}
	}
	r.mu.Unlock()
	// v2 at 30% and 100%, promoted; v3 at 30%, reverted.
	if len(want) < 5 {
		r.t.Fatalf("only %d distinct committed splits: %+v", len(want), want)
	}
	var got []traffic.Split
	r.eventually("every committed split read back live", 30*time.Second, func() bool {
		got = live.get()
		return subsequence(want, got)
	})
	r.t.Logf("%d commits, each read back from the kube-apiserver among %d live splits", len(want), len(got))
	for _, s := range want {
		r.t.Logf("  canary %3d%%  stable %s  canary %s", s.CanaryPercent, digest(s.StableURI), digest(s.CanaryURI))
	}
}

// digest shortens a pinned artifact URI to its digest's first hex digits.
func digest(uri string) string {
	if _, d, ok := strings.Cut(uri, "@sha256:"); ok && len(d) >= 12 {
		return "sha256:" + d[:12]
	}
	return uri
}

// subsequence reports whether want appears in got in order.
func subsequence(want, got []traffic.Split) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// wantLLMISVCObjects reads the two LLMInferenceServices from the
// kube-apiserver as raw objects until each member serves its artifact
// (spec.model.uri) and every rule of the stable member's inline route
// gives the stable InferencePool 100 and the canary's 0.
func (r *rollout) wantLLMISVCObjects(stable, can canary.Artifact) {
	r.t.Helper()
	var why string
	ok := func() bool {
		why = r.llmisvcMismatch(stable.Location(), can.Location())
		return why == ""
	}
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			r.t.Fatalf("LLMInferenceServices not at stable %s alone: %s", stable.Version, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// llmisvcMismatch returns what differs from the wanted objects, or "".
func (r *rollout) llmisvcMismatch(stableURI, canaryURI string) string {
	res := r.dyn().Resource(traffic.LLMISVCGVR()).Namespace("models")
	objs := map[string]*unstructured.Unstructured{}
	for name, want := range map[string]string{"qwen-llm-stable": stableURI, "qwen-llm-canary": canaryURI} {
		o, err := res.Get(r.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if got, _, _ := unstructured.NestedString(o.Object, "spec", "model", "uri"); got != want {
			return fmt.Sprintf("%s spec.model.uri = %q, want %q", name, got, want)
		}
		objs[name] = o
	}
	rules, _, err := unstructured.NestedSlice(objs["qwen-llm-stable"].Object, "spec", "router", "route", "http", "spec", "rules")
	if err != nil || len(rules) != 2 {
		return fmt.Sprintf("qwen-llm-stable has %d rules (%v), want 2", len(rules), err)
	}
	for i, rule := range rules {
		refs, _, _ := unstructured.NestedSlice(rule.(map[string]any), "backendRefs")
		got := map[string]int64{}
		for _, ref := range refs {
			m := ref.(map[string]any)
			w, _, _ := unstructured.NestedInt64(m, "weight")
			got[fmt.Sprint(m["name"])] = w
		}
		if got["qwen-llm-stable-inference-pool"] != 100 || got["qwen-llm-canary-inference-pool"] != 0 || len(got) != 2 {
			return fmt.Sprintf("rule %d weights = %v, want stable pool 100 and canary pool 0", i, got)
		}
	}
	return ""
}
