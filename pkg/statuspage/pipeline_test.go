package statuspage

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/canary/canarytest"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// A pipeline dev → staging in one real repository: staging names its
// upstream, and dev's stable artifact, which staging reverted, is marked
// on the fleet view, the rollout page and in the API.
func TestStatusPageMarksWhatDownstreamReverted(t *testing.T) {
	root := t.TempDir()
	bare, work := filepath.Join(root, "gitops.git"), filepath.Join(root, "seed")
	git(t, root, "init", "--bare", "--quiet", "-b", "main", bare)
	git(t, root, "clone", "--quiet", bare, work)
	v2 := canary.Artifact{URI: "oci://ghcr.io/acme/dev@sha256:" + strings.Repeat("2", 64), Version: "2.0.0"}
	dev := canary.NewState("dev", v2)
	dev.Status.Phase, dev.Status.PromotedAt = canary.PhasePromoted, epoch
	staging := canary.NewState("staging", canary.Artifact{URI: "oci://ghcr.io/acme/dev@sha256:" + strings.Repeat("1", 64)})
	staging.Status.Phase, staging.Status.Failed = canary.PhaseReverted, []canary.Artifact{v2}
	files := map[string]string{
		".canarybot/plans/dev.yaml": planYAML("dev"),
		".canarybot/plans/staging.yaml": strings.Replace(planYAML("staging"), "{oci: {repository: ghcr.io/acme/staging}}",
			"{fromPlan: {name: dev, soak: 1h}}", 1),
	}
	for name, st := range map[string]*canary.RolloutState{"dev": dev, "staging": staging} {
		b, err := canary.MarshalState(st)
		if err != nil {
			t.Fatal(err)
		}
		files[canary.StatePath(name)] = string(b)
	}
	for p, content := range files {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, work, "add", "-A")
	git(t, work, "commit", "--quiet", "-m", "seed")
	git(t, work, "push", "--quiet", "origin", "HEAD:main")
	r, err := gitops.OpenReadOnly(t.Context(), gitops.Options{URL: bare})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Clock: canarytest.NewManualClock(epoch), Repos: func() []Repo { return []Repo{{Name: "acme/gitops", Git: r}} }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)

	var f Fleet
	fetchJSON(t, srv, "/api/v1/rollouts", &f)
	got := map[string]RolloutSummary{}
	for _, s := range f.Repos[0].Rollouts {
		got[s.Plan] = s
	}
	if d := got["dev"]; strings.Join(d.RevertedDownstream, ",") != "staging" || d.Upstream != "" {
		t.Errorf("dev: reverted downstream in %v, upstream %q; want marked by staging", d.RevertedDownstream, d.Upstream)
	}
	if s := got["staging"]; s.Upstream != "dev" || len(s.RevertedDownstream) != 0 {
		t.Errorf("staging: upstream %q, marks %v", s.Upstream, s.RevertedDownstream)
	}
	if _, _, body := fetch(t, srv, "/"); !strings.Contains(body, `title="reverted downstream in staging">marked</span>`) {
		t.Errorf("the fleet view does not mark dev's stable:\n%s", body)
	}
	_, _, body := fetch(t, srv, "/rollouts/dev")
	if !strings.Contains(body, `<span class="badge warn">marked</span> reverted downstream in staging`) {
		t.Errorf("dev's page does not mark its stable:\n%s", body)
	}
	if _, _, body := fetch(t, srv, "/rollouts/staging"); !strings.Contains(body, "<dt>Upstream stage</dt><dd>dev") {
		t.Errorf("staging's page does not name its upstream:\n%s", body)
	}
}
