package kustomize

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

var update = flag.Bool("update", false, "regenerate golden expected directories and committed components")

// Artifacts used across tests: pinned OCI references, as the bot writes them.
const (
	fraudStable = "oci://ghcr.io/example/models/fraud-detector@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	fraudCanary = "oci://ghcr.io/example/models/fraud-detector@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	qwenStable  = "oci://ghcr.io/example/models/qwen@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	qwenCanary  = "oci://ghcr.io/example/models/qwen@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func kserveTraffic() canary.TrafficSpec {
	return canary.TrafficSpec{
		Mode:   canary.ModeKServe,
		KServe: &canary.KServeTraffic{InferenceService: "fraud-detector"},
	}
}

func gatewayTraffic() canary.TrafficSpec {
	return canary.TrafficSpec{
		Mode: canary.ModeGateway,
		Gateway: &canary.GatewayTraffic{
			HTTPRoute: "qwen",
			Stable:    canary.Backend{InferenceService: "qwen-stable", Service: "qwen-stable-predictor"},
			Canary:    canary.Backend{InferenceService: "qwen-canary", Service: "qwen-canary-predictor"},
		},
	}
}

func testPlan(overlay string, traffic canary.TrafficSpec) *canary.CanaryPlan {
	return &canary.CanaryPlan{
		APIVersion: canary.APIVersion,
		Kind:       canary.KindCanaryPlan,
		Metadata:   canary.ObjectMeta{Name: "test"},
		Spec:       canary.PlanSpec{Overlay: overlay, Traffic: traffic},
	}
}

// readTree returns every regular file under dir by slash path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatalf("read tree %s: %v", dir, err)
	}
	return out
}

// writeTree replaces dir with files.
func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for rel, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// copyTree copies src into a fresh temp dir and returns it.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	writeTree(t, dst, readTree(t, src))
	return dst
}

// expectMatchingTrees compares two file sets byte for byte, in the manner
// of Flux's testutil.ExpectMatchingDirectories.
func expectMatchingTrees(t *testing.T, got, want map[string][]byte) {
	t.Helper()
	var names []string
	for n := range got {
		names = append(names, n)
	}
	for n := range want {
		if _, ok := got[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		g, gok := got[n]
		w, wok := want[n]
		switch {
		case !gok:
			t.Errorf("%s: missing from result", n)
		case !wok:
			t.Errorf("%s: unexpected file in result:\n%s", n, g)
		case !bytes.Equal(g, w):
			t.Errorf("%s differs\n--- got\n%s\n--- want\n%s", n, g, w)
		}
	}
}

// dirFS is the directory root as a build sees a repository revision:
// confined to root, symlinks included.
func dirFS(t testing.TB, root string) fs.FS {
	t.Helper()
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r.FS()
}

// diskTree is the directory root as a canary.Tree.
func diskTree(t testing.TB, root string) canary.Tree {
	return canary.Tree{Head: "disk", FS: dirFS(t, root)}
}
