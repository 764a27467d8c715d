package benchfleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// human is a person committing to the branch from their own clone with the
// git CLI: plain `git push`, and on a refusal `git pull --rebase` and push
// again, as a person would. They edit files outside the overlays and the
// human-owned half of the overlays canarybot is rolling out.
type human struct {
	dir      string
	overlays []string
	state    map[string]*humanOverlay
	// wrote is the last content the human wrote at each path.
	wrote   map[string][]byte
	pushed  []humanCommit
	retries int
}

// humanCommit is one human commit as pushed (after any rebase).
type humanCommit struct {
	sha string
	at  time.Time
}

// maxHumanPushes bounds one commit's push attempts.
const maxHumanPushes = 40

func newHuman(ctx context.Context, url, dir string, overlays []string) (*human, error) {
	if err := gitCmd(ctx, filepath.Dir(dir), "clone", "--quiet", url, dir); err != nil {
		return nil, err
	}
	h := &human{dir: dir, overlays: overlays, state: map[string]*humanOverlay{}, wrote: map[string][]byte{}}
	for _, o := range overlays {
		h.state[o] = &humanOverlay{}
	}
	return h, nil
}

// commit makes human commit i and pushes it: every third one a file
// outside the overlays, the others a resource or a patch added to the
// human-owned half of an overlay.
func (h *human) commit(ctx context.Context, i int) error {
	files := map[string][]byte{}
	var subject string
	switch name := h.overlays[(i/3*7)%len(h.overlays)]; i % 3 {
	case 0:
		p := fmt.Sprintf("teams/team-%02d/NOTES.md", i%10)
		files[p] = append(slices.Clone(h.wrote[p]), fmt.Sprintf("- human note %d\n", i)...)
		subject = fmt.Sprintf("docs: note %d", i)
	case 1:
		res := fmt.Sprintf("configmap-h%03d.yaml", i)
		st := h.state[name]
		st.resources = append(st.resources, res)
		files[overlayDir(name)+"/"+res] = configMap(name, i)
		files[overlayDir(name)+"/kustomization.yaml"] = st.kustomization(name)
		subject = fmt.Sprintf("%s: add %s", name, res)
	default:
		st := h.state[name]
		st.patch = true
		files[overlayDir(name)+"/human-patch.yaml"] = humanPatch(name, 512+i)
		files[overlayDir(name)+"/kustomization.yaml"] = st.kustomization(name)
		subject = fmt.Sprintf("%s: memory limit %dMi", name, 512+i)
	}
	for p, b := range files {
		full := filepath.Join(h.dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("human commit %d: %w", i, err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return fmt.Errorf("human commit %d: %w", i, err)
		}
		h.wrote[p] = b
	}
	if err := gitCmd(ctx, h.dir, "add", "-A"); err != nil {
		return err
	}
	if err := gitCmd(ctx, h.dir, "commit", "--quiet", "-m", subject); err != nil {
		return err
	}
	return h.push(ctx)
}

// push pushes main, pulling with --rebase after each refusal.
func (h *human) push(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		_, err := gitOut(ctx, h.dir, "push", "--quiet", "origin", "main")
		if err == nil {
			break
		}
		if !refused(err) || attempt >= maxHumanPushes {
			return fmt.Errorf("human push (attempt %d): %w", attempt, err)
		}
		h.retries++
		if err := gitCmd(ctx, h.dir, "pull", "--quiet", "--rebase", "origin", "main"); err != nil {
			return err
		}
	}
	sha, err := gitOut(ctx, h.dir, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	h.pushed = append(h.pushed, humanCommit{sha: strings.TrimSpace(sha), at: time.Now()})
	return nil
}

// refused recognizes the git CLI's refusals of a push to a branch that
// moved (and the server's lost race for the ref's lock).
func refused(err error) bool {
	msg := err.Error()
	for _, s := range []string{"[rejected]", "non-fast-forward", "fetch first", "cannot lock ref", "failed to update ref", "[remote rejected]"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// humanCheck is what survived of the human commits at the final head.
type humanCheck struct {
	// Unreachable are the pushed human commits not reachable from the
	// final head; Clobbered the paths whose content there is not what the
	// human last wrote.
	Unreachable, Clobbered []string
}

// check compares the bare repository's head with what the human pushed.
func (h *human) check(ctx context.Context, bare string) (humanCheck, error) {
	var c humanCheck
	out, err := gitOut(ctx, bare, "rev-list", "main")
	if err != nil {
		return c, err
	}
	reachable := map[string]bool{}
	for _, sha := range strings.Fields(out) {
		reachable[sha] = true
	}
	for _, p := range h.pushed {
		if !reachable[p.sha] {
			c.Unreachable = append(c.Unreachable, p.sha)
		}
	}
	for p, want := range h.wrote {
		got, err := gitOut(ctx, bare, "show", "main:"+p)
		if err != nil || got != string(want) {
			c.Clobbered = append(c.Clobbered, p)
		}
	}
	return c, nil
}
