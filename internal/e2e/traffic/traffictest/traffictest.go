// Package traffictest builds this repository's real manifests into live-like
// objects for tests: it renders the bot's component of an overlay for a
// split, as a commit would carry it, builds the overlay with kustomize and
// decodes each object as the kube-apiserver would hand it out.
package traffictest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/kustomize"
)

// Overlays of the repository's manifests and the namespace they deploy to.
const (
	QwenOverlay    = "manifests/overlays/qwen"
	FraudOverlay   = "manifests/overlays/fraud-detector"
	QwenLLMOverlay = "manifests/overlays/qwen-llm"
	Namespace      = "models"
)

// Gateway is the qwen plan's traffic spec (examples/qwen-gateway.yaml).
func Gateway() canary.TrafficSpec {
	return canary.TrafficSpec{
		Mode: canary.ModeGateway,
		Gateway: &canary.GatewayTraffic{
			HTTPRoute: "qwen",
			Stable:    canary.Backend{InferenceService: "qwen-stable", Service: "qwen-stable-predictor"},
			Canary:    canary.Backend{InferenceService: "qwen-canary", Service: "qwen-canary-predictor"},
		},
	}
}

// KServe is the fraud-detector plan's traffic spec
// (examples/fraud-detector-kserve.yaml).
func KServe() canary.TrafficSpec {
	return canary.TrafficSpec{
		Mode:   canary.ModeKServe,
		KServe: &canary.KServeTraffic{InferenceService: "fraud-detector"},
	}
}

// LLMISVC is the qwen-llm plan's traffic spec (examples/qwen-llmisvc.yaml).
func LLMISVC() canary.TrafficSpec {
	return canary.TrafficSpec{
		Mode: canary.ModeLLMISVC,
		LLMISVC: &canary.LLMISVCTraffic{
			Router: "qwen-llm-stable",
			Stable: canary.LLMISVCMember{Name: "qwen-llm-stable", Backend: "qwen-llm-stable-inference-pool"},
			Canary: canary.LLMISVCMember{Name: "qwen-llm-canary", Backend: "qwen-llm-canary-inference-pool"},
		},
	}
}

// Objects copies the repository's manifests into a temporary directory,
// renders overlay's bot-owned component so that it expresses d, builds the
// overlay and returns the built objects keyed by kind/name.
func Objects(t testing.TB, overlay string, spec canary.TrafficSpec, d canary.Desired) map[string]*unstructured.Unstructured {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "manifests"), os.DirFS(filepath.Join(repoRoot(t), "manifests"))); err != nil {
		t.Fatalf("copy manifests: %v", err)
	}
	ctx := context.Background()
	b := kustomize.NewBuilder()
	files, err := kustomize.NewRenderer(b).RenderOverlay(ctx, os.DirFS(root), overlay, spec, d)
	if err != nil {
		t.Fatalf("render %s for %+v: %v", overlay, d, err)
	}
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := b.Build(ctx, os.DirFS(root), overlay)
	if err != nil {
		t.Fatalf("build %s: %v", overlay, err)
	}
	return decode(t, out)
}

func decode(t testing.TB, stream []byte) map[string]*unstructured.Unstructured {
	t.Helper()
	objs := map[string]*unstructured.Unstructured{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("split build output: %v", err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("convert build output: %v", err)
		}
		if string(bytes.TrimSpace(js)) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			t.Fatalf("decode build output: %v", err)
		}
		objs[u.GetKind()+"/"+u.GetName()] = u
	}
}

// repoRoot is the module root, four levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("locate traffictest source")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
	if _, err := fs.Stat(os.DirFS(root), "manifests/base"); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	return root
}
