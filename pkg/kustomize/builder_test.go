package kustomize

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestBuildRejectsPathsOutsideRoot(t *testing.T) {
	root := copyTree(t, filepath.Join("testdata", "kserve-initial", "original"))
	for _, overlay := range []string{"../../etc", "..", "overlay/../../x", "/etc", root + "/overlay", ""} {
		t.Run(overlay, func(t *testing.T) {
			_, err := NewBuilder().Build(context.Background(), dirFS(t, root), overlay)
			if !errors.Is(err, ErrOutsideRoot) {
				t.Fatalf("Build(%q) err = %v, want ErrOutsideRoot", overlay, err)
			}
		})
	}
}

func TestBuildRefusesSymlinkOutOfRoot(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string][]byte{
		"kustomization.yaml": []byte("resources:\n  - secret.yaml\n"),
		"secret.yaml":        []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\n"),
	})
	for _, tc := range []struct {
		name string
		link string // relative to root
		kust string // overlay kustomization
	}{
		{"linked base dir", "overlay/stolen", "resources:\n  - stolen\n"},
		{"linked resource file", "overlay/secret.yaml", "resources:\n  - secret.yaml\n"},
		{"linked overlay", "overlay", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			target := outside
			if strings.HasSuffix(tc.link, ".yaml") {
				target = filepath.Join(outside, "secret.yaml")
			}
			if tc.kust != "" {
				writeTree(t, filepath.Join(root, "overlay"), map[string][]byte{"kustomization.yaml": []byte(tc.kust)})
			}
			if err := os.Symlink(target, filepath.Join(root, tc.link)); err != nil {
				t.Fatal(err)
			}
			out, err := NewBuilder().Build(context.Background(), dirFS(t, root), "overlay")
			t.Logf("err: %v", err)
			if err == nil {
				t.Fatalf("Build succeeded through a symlink out of root:\n%s", out)
			}
			if bytes.Contains(out, []byte("stolen")) {
				t.Errorf("output contains the outside object")
			}
			if !errors.Is(err, ErrOutsideRoot) && !strings.Contains(err.Error(), ErrOutsideRoot.Error()) {
				t.Errorf("err = %v, want it to name %v", err, ErrOutsideRoot)
			}
		})
	}
}

func TestBuildFollowsSymlinkInsideRoot(t *testing.T) {
	root := copyTree(t, filepath.Join("testdata", "kserve-initial", "original"))
	if err := os.Rename(filepath.Join(root, "base"), filepath.Join(root, "real-base")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real-base", filepath.Join(root, "base")); err != nil {
		t.Fatal(err)
	}
	out, err := NewBuilder().Build(context.Background(), dirFS(t, root), "overlay")
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	e, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.InferenceServices["fraud-detector"].StorageURI; got != fraudStable {
		t.Errorf("storageUri = %q, want %q", got, fraudStable)
	}
}

func TestBuildRefusesRemoteReferences(t *testing.T) {
	for _, ref := range []string{
		"https://raw.githubusercontent.com/example/repo/main/deploy.yaml",
		"github.com/example/repo//deploy?ref=main",
		"git@github.com:example/repo.git",
	} {
		t.Run(ref, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, map[string][]byte{
				"overlay/kustomization.yaml": []byte("resources:\n  - " + ref + "\n"),
			})
			_, err := NewBuilder().Build(context.Background(), dirFS(t, root), "overlay")
			t.Logf("err: %v", err)
			if !errors.Is(err, ErrRemoteReference) {
				t.Fatalf("err = %v, want ErrRemoteReference", err)
			}
		})
	}
}

func TestBuildHonoursContext(t *testing.T) {
	root := copyTree(t, filepath.Join("testdata", "kserve-initial", "original"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewBuilder().Build(ctx, dirFS(t, root), "overlay"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestBuildConcurrentCallsAreSerialised(t *testing.T) {
	root := copyTree(t, filepath.Join("testdata", "gateway-30", "original"))
	b := NewBuilder()
	want, err := b.Build(context.Background(), dirFS(t, root), "overlay")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	outs := make([][]byte, 8)
	errs := make([]error, 8)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = b.Build(context.Background(), dirFS(t, root), "overlay")
		}()
	}
	wg.Wait()
	for i := range outs {
		if errs[i] != nil || !bytes.Equal(outs[i], want) {
			t.Errorf("build %d: err = %v, output equal = %v", i, errs[i], bytes.Equal(outs[i], want))
		}
	}
}

func TestParse(t *testing.T) {
	stream := `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: a
  namespace: models
spec:
  predictor:
    canaryTrafficPercent: 20
    model:
      storageUri: s3://a
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: b
spec:
  predictor:
    xgboost:
      storageUri: s3://b
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: c
spec:
  predictor:
    sklearn:
      storageUri: s3://c1
    xgboost:
      storageUri: s3://c2
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r
spec:
  rules:
  - backendRefs:
    - name: x
      weight: 7
    - name: y
  - backendRefs:
    - name: y
      weight: 3
---
apiVersion: v1
kind: Service
metadata:
  name: ignored
`
	e, err := Parse([]byte(stream))
	if err != nil {
		t.Fatal(err)
	}
	a := e.InferenceServices["a"]
	if a.StorageURI != "s3://a" || a.StorageURIPath != "/spec/predictor/model/storageUri" || a.CanaryTrafficPercent == nil || *a.CanaryTrafficPercent != 20 {
		t.Errorf("a = %+v", a)
	}
	if b := e.InferenceServices["b"]; b.StorageURI != "s3://b" || b.StorageURIPath != "/spec/predictor/xgboost/storageUri" || b.CanaryTrafficPercent != nil {
		t.Errorf("b = %+v", b)
	}
	if c := e.InferenceServices["c"]; c.StorageURIPath != "" || !strings.Contains(c.StorageURIError, "sklearn, xgboost") {
		t.Errorf("c = %+v, want an ambiguity naming both keys", c)
	}
	r := e.HTTPRoutes["r"]
	if r.Weights["x"] != 7 || r.Weights["y"] != 1 {
		t.Errorf("weights = %v, want x 7 and y defaulted to 1 from the first rule", r.Weights)
	}
	if len(r.Rules) != 2 || r.Rules[1].BackendRefs[0].Weight != 3 || r.Rules[0].BackendRefs[1].WeightSet {
		t.Errorf("rules = %+v", r.Rules)
	}
	if len(e.InferenceServices) != 3 || len(e.HTTPRoutes) != 1 {
		t.Errorf("parsed %d isvcs and %d routes, want 3 and 1", len(e.InferenceServices), len(e.HTTPRoutes))
	}
}

func TestParseRejectsDuplicateNames(t *testing.T) {
	doc := "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n  namespace: %s\n"
	stream := strings.Replace(doc, "%s", "a", 1) + "---\n" + strings.Replace(doc, "%s", "b", 1)
	if _, err := Parse([]byte(stream)); err == nil || !strings.Contains(err.Error(), "two HTTPRoutes named r") {
		t.Fatalf("err = %v, want a duplicate-name error", err)
	}
}
