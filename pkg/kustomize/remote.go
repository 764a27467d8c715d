package kustomize

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// checkNoRemote refuses a kustomization file that refers to anything but
// local paths. kustomize fetches http(s) URLs and clones git repositories
// outside the FileSystem it is given, so confinement must stop them here.
// Malformed files pass through: kustomize reports them better.
func checkNoRemote(path string, content []byte) error {
	var k types.Kustomization
	if err := yaml.Unmarshal(content, &k); err != nil {
		return nil //nolint:nilerr // kustomize reports the syntax error
	}
	for _, ref := range kustomizationRefs(&k) {
		if isRemote(ref) {
			return fmt.Errorf("kustomization %s refers to %q: %w", path, ref, ErrRemoteReference)
		}
	}
	return nil
}

// kustomizationRefs lists every field of k that kustomize loads by path.
func kustomizationRefs(k *types.Kustomization) []string {
	refs := []string{k.OpenAPI["path"]}
	for _, l := range [][]string{
		k.Resources, k.Components, k.Bases, k.Crds, k.Configurations,
		k.Generators, k.Transformers, k.Validators,
	} {
		refs = append(refs, l...)
	}
	for _, p := range append(append([]types.Patch{}, k.Patches...), k.PatchesJson6902...) {
		refs = append(refs, p.Path)
	}
	for _, p := range k.PatchesStrategicMerge {
		if s := string(p); !strings.Contains(s, "\n") {
			refs = append(refs, s)
		}
	}
	for _, g := range k.ConfigMapGenerator {
		refs = append(append(append(refs, g.FileSources...), g.EnvSources...), g.EnvSource)
	}
	for _, g := range k.SecretGenerator {
		refs = append(append(append(refs, g.FileSources...), g.EnvSources...), g.EnvSource)
	}
	return refs
}

// isRemote reports whether a kustomization reference is a URL or a git
// repository spec rather than a local path.
func isRemote(ref string) bool {
	if strings.Contains(ref, "://") || strings.HasPrefix(ref, "git@") || strings.HasPrefix(ref, "git::") {
		return true
	}
	for _, host := range []string{"github.com/", "gitlab.com/", "bitbucket.org/"} {
		if strings.HasPrefix(ref, host) {
			return true
		}
	}
	return false
}
