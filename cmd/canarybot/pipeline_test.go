package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/argocd/argocdtest"
	"github.com/canarybot/canarybot/pkg/canary"
)

// stagePlanYAML is a kserve plan of the fraud detector in env, with two
// steps and source src (a YAML flow mapping).
func stagePlanYAML(env, src string) string {
	return `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: ` + env + `}
spec:
  model:
    name: fraud-detector
    source: ` + src + `
  traffic: {mode: kserve, kserve: {inferenceService: fraud-detector}}
  overlay: manifests/overlays/fraud-` + env + `
  argocd: {application: fraud-` + env + `}
  steps:
  - setWeight: 50
  - setWeight: 100
`
}

// stageOverlay is a copy of the fraud detector's overlay for env.
func stageOverlay(t *testing.T, files map[string]string, env string) {
	t.Helper()
	src := "../../manifests/overlays/fraud-detector"
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		files["manifests/overlays/fraud-"+env+"/"+filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// soakUntil finds "soaking until T)" in a reconcile's output.
var soakUntil = regexp.MustCompile(`soaking until (\S+)\)`)

// waitOutSoak sleeps until the soak a reconcile reported has ended (at
// most 5 s), so that a fast machine does not use up its runs inside it.
// The reason gives whole seconds, so it sleeps one more.
func waitOutSoak(t *testing.T, out string) {
	t.Helper()
	m := soakUntil.FindStringSubmatch(out)
	if m == nil {
		return
	}
	until, err := time.Parse(time.RFC3339, m[1])
	if err != nil {
		t.Fatalf("soak end %q: %v", m[1], err)
	}
	if d := time.Until(until) + time.Second; d > 0 && d < 5*time.Second {
		time.Sleep(d)
	}
}

func digestURI(c string) string {
	return "oci://ghcr.io/acme/fraud-detector@sha256:" + strings.Repeat(c, 64)
}

// A three-stage pipeline, dev → staging in one repository and prod in
// another, driven by `canarybot reconcile` over real Git repositories and
// Argo CD's real apiclient: one digest goes through dev, staging and prod,
// each stage starting only after its upstream promoted it. The next
// digest is promoted in dev and reverted in staging (a bad canary,
// aborted), and prod never proposes it; status shows the pipeline, with
// dev's stable marked as reverted downstream.
func TestPipelinePromotesThroughThreeStages(t *testing.T) {
	platformFiles := map[string]string{
		".canarybot/plans/dev.yaml":     stagePlanYAML("dev", `{static: {uri: "`+digestURI("1")+`", version: "1.0.0"}}`),
		".canarybot/plans/staging.yaml": stagePlanYAML("staging", "{fromPlan: {name: dev}}"),
	}
	stageOverlay(t, platformFiles, "dev")
	stageOverlay(t, platformFiles, "staging")
	platform := gitopsRemote(t, platformFiles)
	platformName := filepath.Base(filepath.Dir(platform)) + "/gitops" // owner/name: the path's last two parts
	prodFiles := map[string]string{
		".canarybot/plans/prod.yaml": stagePlanYAML("prod", "{fromPlan: {name: staging, repository: "+platformName+", soak: 1s}}"),
	}
	stageOverlay(t, prodFiles, "prod")
	prod := gitopsRemote(t, prodFiles)
	bareOf := map[string]string{"fraud-dev": platform, "fraud-staging": platform, "fraud-prod": prod}
	argo := &argocdtest.Server{Head: func(app string) (string, error) {
		out, err := exec.Command("git", "-C", bareOf[app], "rev-parse", "main").Output()
		return strings.TrimSpace(string(out)), err
	}}
	if err := argo.Start(); err != nil {
		t.Fatal(err)
	}
	defer argo.Stop()
	dir := t.TempDir()
	var outputs []string
	reconcileUntil := func(what string, done func() bool) {
		t.Helper()
		for range 16 {
			out, stderr, err := runBinary(t, nil, "reconcile", "--once", "--repo", platform, "--repo", prod, "--dir", filepath.Join(dir, "bot"),
				"--prometheus", "http://127.0.0.1:1", "--argocd-server", argo.Addr(), "--argocd-plaintext")
			if err != nil {
				t.Fatalf("reconcile: %v\n%s%s", err, out, stderr)
			}
			outputs = append(outputs, out)
			if done() {
				return
			}
			waitOutSoak(t, out)
		}
		t.Fatalf("%s: not after 16 runs:\n%s", what, strings.Join(outputs, "---\n"))
	}
	promoted := func(bare, plan, digit string) func() bool {
		return func() bool {
			st := readStateIfAny(t, bare, plan)
			return st != nil && st.Status.Phase == canary.PhasePromoted && st.Status.Stable.URI == digestURI(digit)
		}
	}

	reconcileUntil("1.0.0 promoted in prod", promoted(prod, "prod", "1"))
	for _, s := range []struct{ bare, plan string }{{platform, "dev"}, {platform, "staging"}, {prod, "prod"}} {
		if st := readState(t, s.bare, s.plan); st.Status.Stable.URI != digestURI("1") || st.Status.PromotedAt.IsZero() {
			t.Errorf("%s: stable %s promoted at %s, want 1.0.0 promoted", s.plan, st.Status.Stable.URI, st.Status.PromotedAt)
		}
	}
	// Each stage started only after its upstream had promoted.
	order := gitRun(t, platform, "log", "--reverse", "--format=%s", "main")
	if d, s := strings.Index(order, "canary(dev): promote"), strings.Index(order, "canary(staging): start"); d < 0 || s < d {
		t.Errorf("staging started before dev promoted:\n%s", order)
	}
	staging, prodState := readState(t, platform, "staging"), readState(t, prod, "prod")
	if !prodState.Status.RolloutStartedAt.After(staging.Status.PromotedAt) {
		t.Errorf("prod started at %s, before staging promoted at %s", prodState.Status.RolloutStartedAt, staging.Status.PromotedAt)
	}

	// 2.0.0 reaches dev and is reverted in staging: prod never proposes it.
	work := filepath.Join(t.TempDir(), "work")
	gitRun(t, filepath.Dir(work), "clone", "--quiet", platform, work)
	plan := stagePlanYAML("dev", `{static: {uri: "`+digestURI("2")+`", version: "2.0.0"}}`)
	if err := os.WriteFile(filepath.Join(work, ".canarybot/plans/dev.yaml"), []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, work, "commit", "--quiet", "-am", "dev: 2.0.0")
	gitRun(t, work, "push", "--quiet", "origin", "HEAD:main")
	reconcileUntil("2.0.0 in canary in staging", func() bool {
		st := readState(t, platform, "staging")
		return st.Status.Phase == canary.PhaseProgressing && st.Status.Candidate.URI == digestURI("2")
	})
	if out, stderr, err := runBinary(t, nil, "abort", "--repo", platform, "--dir", filepath.Join(dir, "cli"), "--plan", "staging",
		"--by", "alice", "--reason", "bad answers"); err != nil {
		t.Fatalf("abort: %v\n%s%s", err, out, stderr)
	}
	reconcileUntil("2.0.0 reverted in staging", func() bool {
		return readState(t, platform, "staging").Status.IsFailed(digestURI("2"))
	})
	reconcileUntil("dev promoted 2.0.0", promoted(platform, "dev", "2"))
	for range 3 {
		reconcileUntil("a run", func() bool { return true })
	}
	if st := readState(t, prod, "prod"); st.Status.Stable.URI != digestURI("1") || !st.Status.Candidate.IsZero() ||
		st.Status.Phase != canary.PhasePromoted {
		t.Errorf("prod: %s, stable %s, candidate %s; want 1.0.0 still promoted and nothing proposed",
			st.Status.Phase, st.Status.Stable.URI, st.Status.Candidate.URI)
	}
	if log := gitRun(t, prod, "log", "--format=%B", "main"); strings.Contains(log, digestURI("2")) {
		t.Errorf("a prod commit names the digest staging reverted:\n%s", log)
	}
	if last := outputs[len(outputs)-1]; !strings.Contains(last, "prod: wait") {
		t.Errorf("prod does not wait:\n%s", last)
	}

	out, stderr, err := runBinary(t, nil, "status", "--repo", platform)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, stderr)
	}
	wantLines(t, out, "pipelines (spec.model.source.fromPlan), first stage first:", "  dev:",
		"    dev first stage Promoted stable: 2.0.0 "+digestURI("2")+" candidate: -",
		"marked: its stable 2.0.0 "+digestURI("2")+" was reverted downstream in staging",
		"    staging from dev, soak 0s Reverted stable: 1.0.0 "+digestURI("1")+" candidate: -")
	out, _, err = runBinary(t, nil, "status", "--repo", prod)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "    "+platformName+":staging first stage in repository "+platformName+": run status there",
		"    prod from "+platformName+":staging, soak 1s Promoted stable: 1.0.0 "+digestURI("1")+" candidate: -")
}

// wantLines wants each of want to be a line of out, with runs of spaces
// (tabwriter's padding) read as one.
func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	lines := map[string]bool{}
	for l := range strings.Lines(out) {
		lead := len(l) - len(strings.TrimLeft(l, " "))
		lines[l[:lead]+strings.Join(strings.Fields(l), " ")] = true
	}
	for _, w := range want {
		if !lines[w] && !strings.Contains(out, w) {
			t.Errorf("no line %q in:\n%s", w, out)
		}
	}
}

// readStateIfAny is readState, or nil while the plan has no state on main.
func readStateIfAny(t *testing.T, bare, plan string) *canary.RolloutState {
	t.Helper()
	if err := exec.Command("git", "-C", bare, "cat-file", "-e", "main:"+canary.StatePath(plan)).Run(); err != nil {
		return nil
	}
	return readState(t, bare, plan)
}

// fromPlan.repository owner/name finds the --repo whose URL or path ends
// with it, and only that one.
func TestRepoStagesMatchTheEndOfTheURL(t *testing.T) {
	for _, tc := range []struct {
		url, repo string
		want      bool
	}{
		{"https://github.com/acme/gitops.git", "acme/gitops", true},
		{"https://github.com/Acme/GitOps", "acme/gitops", true},
		{"file:///srv/git/acme/gitops.git/", "acme/gitops", true},
		{"/tmp/x/acme/gitops.git", "acme/gitops", true},
		{"acme/gitops", "acme/gitops", true},
		{"https://github.com/acme/gitops-prod", "acme/gitops", false},
		{"https://github.com/xacme/gitops", "acme/gitops", false},
		{"https://github.com/acme/gitops/extra", "acme/gitops", false},
	} {
		if got := repoPathEnds(tc.url, tc.repo); got != tc.want {
			t.Errorf("repoPathEnds(%q, %q) = %v", tc.url, tc.repo, got)
		}
	}
	s := repoStages{"https://github.com/acme/gitops": nil, "https://gitlab.example/acme/gitops": nil}
	if _, err := s.StageRepo(t.Context(), "acme/gitops"); !canary.IsTerminal(err) || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("two matches: %v", err)
	}
	if _, err := s.StageRepo(t.Context(), "acme/other"); !errors.Is(err, canary.ErrRepoNotServed) {
		t.Errorf("no match: %v", err)
	}
}
