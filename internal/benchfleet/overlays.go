package benchfleet

import (
	"fmt"
	"io/fs"
	"strings"

	canarybot "github.com/canarybot/canarybot"
	"github.com/canarybot/canarybot/pkg/canary"
)

// template is one of the repository's own manifests/ models, copied under
// another name: fraud-detector (kserve mode, one InferenceService) or qwen
// (gateway mode, two InferenceServices and an HTTPRoute).
type template string

const (
	kserveTemplate  template = "fraud-detector"
	gatewayTemplate template = "qwen"
)

// files are the template's base and overlay (with its canarybot
// component) as model name, repo path → content.
func (tp template) files(name string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, dir := range []string{"manifests/base/", "manifests/overlays/"} {
		root := dir + string(tp)
		err := fs.WalkDir(canarybot.Manifests, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := canarybot.Manifests.ReadFile(p)
			if err != nil {
				return err
			}
			rel := strings.TrimPrefix(p, root)
			rel = strings.ReplaceAll(rel, string(tp), name)
			out[dir+name+rel] = []byte(strings.ReplaceAll(string(b), string(tp), name))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", string(tp), err)
		}
	}
	return out, nil
}

// traffic is the plan's traffic section for model name.
func (tp template) traffic(name string) canary.TrafficSpec {
	if tp != gatewayTemplate {
		return canary.TrafficSpec{Mode: canary.ModeKServe, KServe: &canary.KServeTraffic{InferenceService: name}}
	}
	return canary.TrafficSpec{Mode: canary.ModeGateway, Gateway: &canary.GatewayTraffic{HTTPRoute: name,
		Stable: canary.Backend{InferenceService: name + "-stable", Service: name + "-stable-predictor"},
		Canary: canary.Backend{InferenceService: name + "-canary", Service: name + "-canary-predictor"}}}
}

func overlayDir(name string) string { return "manifests/overlays/" + name }

// humanOverlay is what a person has added to one overlay's human-owned
// half: resources beside the base, and a patch of their own.
type humanOverlay struct {
	resources []string
	patch     bool
}

// kustomization is the overlay's human-owned kustomization.yaml: the
// base, the human's resources and patch, and canarybot's component.
func (h humanOverlay) kustomization(name string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `# Human-owned overlay. canarybot owns only ./canarybot/.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base/%s
`, name)
	for _, r := range h.resources {
		fmt.Fprintf(&b, "  - %s\n", r)
	}
	if h.patch {
		b.WriteString("patches:\n  - path: human-patch.yaml\n")
	}
	b.WriteString("components:\n  - canarybot\n")
	return []byte(b.String())
}

// configMap is a human resource for the overlay of model name.
func configMap(name string, n int) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: ConfigMap
metadata:
  name: %s-note-%d
  namespace: models
data:
  note: "human change %d"
`, name, n, n)
}

// humanPatch is a human's strategic-merge patch of the InferenceService:
// its memory limit, which canarybot never touches.
func humanPatch(name string, memMi int) []byte {
	return fmt.Appendf(nil, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: %s
  namespace: models
spec:
  predictor:
    model:
      resources:
        limits:
          memory: %dMi
`, name, memMi)
}

func stepDesired(i int) canary.Desired {
	return canary.Desired{Stable: "oci://registry.local/m@sha256:" + strings.Repeat("1", 64),
		Canary: fmt.Sprintf("oci://registry.local/m@sha256:%064d", i), CanaryWeight: 10 + i%9*10}
}
