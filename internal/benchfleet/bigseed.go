package benchfleet

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// bigOverlay is the i-th overlay of n: every fourth one a gateway model
// (the repository's qwen), the others kserve (its fraud-detector).
func bigOverlay(i, n int) (string, template) {
	i %= n
	if i%4 == 3 {
		return fmt.Sprintf("llm-%04d", i), gatewayTemplate
	}
	return modelName(i), kserveTemplate
}

// bigHistory is the big repository's history: a first commit with every
// overlay and its base, then commits-1 commits that each change one file,
// as people and canarybot do: a base's annotations, a kserve overlay's
// bot-owned component, a team's notes.
func bigHistory(commits, overlays int) ([]seedCommit, error) {
	first := map[string][]byte{"README.md": []byte("# GitOps repository\n")}
	for i := range overlays {
		name, tp := bigOverlay(i, overlays)
		f, err := tp.files(name)
		if err != nil {
			return nil, err
		}
		maps.Copy(first, f)
	}
	history := []seedCommit{{Message: fmt.Sprintf("Add %d models", overlays), Files: first}}
	head := maps.Clone(first)
	for k := 1; k < commits; k++ {
		name, tp := bigOverlay(k*13, overlays)
		var p string
		var b []byte
		switch {
		case k%3 == 1 && tp == kserveTemplate:
			p = overlayDir(name) + "/canarybot/inferenceservice-" + name + ".yaml"
			b = []byte(strings.Replace(string(first[p]), "value: 100", fmt.Sprintf("value: %d", k%100), 1))
		case k%3 == 2:
			p = fmt.Sprintf("teams/team-%02d/NOTES.md", k%20)
			b = fmt.Appendf(slices.Clone(head[p]), "- note %d\n", k)
		default:
			p = "manifests/base/" + name + "/kustomization.yaml"
			b = fmt.Appendf(nil, "%scommonAnnotations:\n  example.com/revision: \"%d\"\n", first[p], k)
		}
		head[p] = b
		history = append(history, seedCommit{Message: fmt.Sprintf("%s: change %d", p, k), Files: map[string][]byte{p: b}})
	}
	return history, nil
}
