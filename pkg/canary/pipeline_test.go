package canary

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// promotedState is a stage that promoted a at, and reverted failed.
func promotedState(plan string, a Artifact, at time.Time, failed ...Artifact) *RolloutState {
	st := NewState(plan, v1)
	st.Status.Phase, st.Status.Stable, st.Status.PromotedAt, st.Status.Failed = PhasePromoted, a, at, failed
	return st
}

func TestOfferFromUpstream(t *testing.T) {
	src := FromPlanSource{Name: "staging", Soak: D(30 * time.Minute)}
	seeded := NewState("staging", v1) // serves what it started on; promoted nothing
	progressing := promotedState("staging", v2, t0)
	progressing.Status.Phase, progressing.Status.Candidate = PhaseProgressing, mlflow7
	cases := []struct {
		name      string
		src       FromPlanSource
		chain     []Stage
		now       time.Time
		want      *Artifact
		reason    string
		wantUntil time.Time
	}{
		{name: "no state yet", src: src, chain: []Stage{{Plan: "staging"}}, now: t0,
			reason: "upstream staging has not rolled anything out yet"},
		{name: "never promoted", src: src, chain: []Stage{{Plan: "staging", State: seeded}}, now: t0,
			reason: "upstream staging has promoted nothing yet"},
		{name: "soaking", src: src, chain: []Stage{{Plan: "staging", State: promotedState("staging", v2, t0)}}, now: t0.Add(10 * time.Minute),
			reason:    "upstream staging promoted " + label(v2) + " at 2026-11-23T12:00:00Z; soaking until 2026-11-23T12:30:00Z",
			wantUntil: t0.Add(30 * time.Minute)},
		{name: "merged later than decided: soaks from the merge", src: src, chain: []Stage{{Plan: "staging",
			State: promotedState("staging", v2, t0), PromotionLanded: t0.Add(time.Hour)}}, now: t0.Add(80 * time.Minute),
			reason:    "upstream staging promoted " + label(v2) + " at 2026-11-23T13:00:00Z; soaking until 2026-11-23T13:30:00Z",
			wantUntil: t0.Add(90 * time.Minute)},
		{name: "soaked", src: src, chain: []Stage{{Plan: "staging", State: promotedState("staging", v2, t0)}}, now: t0.Add(30 * time.Minute),
			want: &v2},
		{name: "no soak", src: FromPlanSource{Name: "staging"}, chain: []Stage{{Plan: "staging", State: promotedState("staging", mlflow7, t0)}},
			now: t0, want: &mlflow7},
		{name: "upstream rolling the next one out still offers its stable", src: src,
			chain: []Stage{{Plan: "staging", State: progressing}}, now: t0.Add(time.Hour), want: &v2},
		{name: "reverted upstream", src: src, chain: []Stage{{Plan: "staging", State: promotedState("staging", v2, t0, v2)}},
			now: t0.Add(time.Hour), reason: label(v2) + " was reverted in stage staging; it is never proposed downstream"},
		{name: "reverted two stages up, in another repository", src: src, chain: []Stage{
			{Plan: "staging", State: promotedState("staging", v2, t0)},
			{Repository: "acme/dev", Plan: "dev", State: promotedState("dev", v3, t0, v2)}},
			now: t0.Add(time.Hour), reason: label(v2) + " was reverted in stage acme/dev:dev; it is never proposed downstream"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := OfferFromUpstream(tc.src, tc.chain, tc.now)
			switch {
			case tc.want != nil && (o.Candidate == nil || *o.Candidate != *tc.want):
				t.Errorf("offer %+v, want %s", o, tc.want.URI)
			case tc.want == nil && (o.Candidate != nil || o.Reason != tc.reason || !o.Until.Equal(tc.wantUntil)):
				t.Errorf("offer %+v\nwant reason %q until %s", o, tc.reason, tc.wantUntil)
			}
		})
	}
}

// Waiting on the upstream is a Wait with its reason, until the soak ends.
func TestDecideWaitsOnTheUpstream(t *testing.T) {
	until := t0.Add(time.Hour)
	d := Decide(testPlan(), state(PhasePromoted, 0), Observations{Sync: SyncObservation{Ready: true},
		Upstream: &UpstreamOffer{Reason: "soaking", Until: until}}, t0)
	if d.Action != ActWait || d.Reason != "soaking" || !d.Until.Equal(until) {
		t.Errorf("decision %+v, want a wait until %s", d, until)
	}
}

func TestValidateFromPlan(t *testing.T) {
	cases := []struct{ src, want string }{
		{src: "fromPlan: {name: staging-qwen, soak: 30m}"},
		{src: "fromPlan: {name: staging-qwen, repository: acme/platform-staging}"},
		{src: "fromPlan: {soak: 30m}", want: "spec.model.source.fromPlan.name: is required"},
		{src: "fromPlan: {name: Staging}", want: `spec.model.source.fromPlan.name: must be a plan name (a DNS label), got "Staging"`},
		{src: "fromPlan: {name: s, repository: 'https://github.com/acme/x'}", want: "spec.model.source.fromPlan.repository: must be owner/name"},
		{src: "fromPlan: {name: s, soak: -1m}", want: "spec.model.source.fromPlan.soak: must not be negative, got -1m0s"},
		{src: "fromPlan: {name: s, soakk: 1m}", want: "spec.model.source.fromPlan.soakk"},
		{src: "fromPlan: {name: s}\n      static: {uri: 'oci://r.io/a/b@sha256:" + strings.Repeat("a", 64) + "'}",
			want: "spec.model.source: exactly one source is required (oci, mlflow, static or fromPlan), got 2"},
	}
	for _, tc := range cases {
		_, err := ParsePlan([]byte(withSource(tc.src)))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.src, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.src, err, tc.want)
		}
	}
}

// stagePlan is namedPlan whose source is fromPlan src.
func stagePlan(name, src string) string {
	return strings.Replace(namedPlan(name), "oci: {repository: ghcr.io/acme/fraud-detector}", "fromPlan: "+src, 1)
}

func TestDiscoverRefusesBrokenPipelines(t *testing.T) {
	fsys := fstest.MapFS{
		".canarybot/plans/dev.yaml":      {Data: []byte(namedPlan("dev"))},
		".canarybot/plans/staging.yaml":  {Data: []byte(stagePlan("staging", "{name: dev}"))},
		".canarybot/plans/prod.yaml":     {Data: []byte(stagePlan("prod", "{name: staging, soak: 1h}"))},
		".canarybot/plans/a.yaml":        {Data: []byte(stagePlan("a", "{name: b}"))},
		".canarybot/plans/b.yaml":        {Data: []byte(stagePlan("b", "{name: a}"))},
		".canarybot/plans/c.yaml":        {Data: []byte(stagePlan("c", "{name: a}"))}, // below a cycle: waits
		".canarybot/plans/self.yaml":     {Data: []byte(stagePlan("self", "{name: self}"))},
		".canarybot/plans/lost.yaml":     {Data: []byte(stagePlan("lost", "{name: ghost}"))},
		".canarybot/plans/broken.yaml":   {Data: []byte(strings.Replace(namedPlan("broken"), "setWeight: 10", "setWeight: ten", 1))},
		".canarybot/plans/onbroken.yaml": {Data: []byte(stagePlan("onbroken", "{name: broken}"))},
		".canarybot/plans/remote.yaml":   {Data: []byte(stagePlan("remote", "{name: ghost, repository: acme/other}"))},
	}
	c, err := Discover(Tree{Head: "h", FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	var valid []string
	for _, e := range c.Plans {
		valid = append(valid, e.Plan.Metadata.Name)
	}
	if got := strings.Join(valid, " "); got != "c dev onbroken prod remote staging" {
		t.Errorf("valid plans: %s", got)
	}
	for name, want := range map[string]string{
		"a":    "spec.model.source.fromPlan: cycle a → b → a",
		"b":    "spec.model.source.fromPlan: cycle b → a → b",
		"self": "spec.model.source.fromPlan: cycle self → self",
		"lost": `spec.model.source.fromPlan.name: no plan named "ghost" in this repository (lost → ghost)`,
	} {
		p, ok := c.Problem(name)
		if !ok || !strings.Contains(p.Err.Error(), want) || !errors.Is(p.Err, ErrInvalidPlan) {
			t.Errorf("%s: problem %v, want %q", name, p.Err, want)
		}
	}
}

type stageReaderFunc func(ctx context.Context, repo string) (StageRepo, error)

func (f stageReaderFunc) StageRepo(ctx context.Context, repo string) (StageRepo, error) {
	return f(ctx, repo)
}

// treeRepo is a StageRepo of one revision, whose commits are unknown.
type treeRepo struct{ t Tree }

func (r treeRepo) Tree(context.Context, string) (Tree, error)                  { return r.t, nil }
func (treeRepo) LastCommit(context.Context, string, ...string) (string, error) { return "", nil }
func (treeRepo) CommitTime(context.Context, string) (time.Time, error)         { return time.Time{}, nil }

// An engine whose plan is the last stage of qwen → staging (same
// repository) → acme/dev:dev (another) proposes what staging promoted
// once it soaked, never what dev reverted, and refuses a repository it
// does not serve.
func TestEngineReadsThePipelineFromGit(t *testing.T) {
	w := newWorld(t, NewState("qwen", v1))
	w.write("plans/qwen.yaml", []byte(strings.Replace(stagePlan("qwen", "{name: staging, soak: 30m}"),
		"overlays/qwen", "overlays/fraud-detector", 1)))
	w.write(".canarybot/plans/staging.yaml", []byte(stagePlan("staging", "{name: dev, repository: acme/dev}")))
	stagingState, err := MarshalState(promotedState("staging", v2, t0))
	if err != nil {
		t.Fatal(err)
	}
	w.write(StatePath("staging"), stagingState)
	devState := promotedState("dev", v2, t0.Add(-time.Hour))
	devTree := func() fstest.MapFS {
		b, err := MarshalState(devState)
		if err != nil {
			t.Fatal(err)
		}
		return fstest.MapFS{".canarybot/plans/dev.yaml": {Data: []byte(namedPlan("dev"))}, StatePath("dev"): {Data: b}}
	}
	w.engine.Artifacts = &fakeArtifacts{LatestFn: func(context.Context, *CanaryPlan) (*Artifact, error) {
		return nil, errors.New("a fromPlan plan asked the registry")
	}}
	w.engine.Pipeline = stageReaderFunc(func(_ context.Context, repo string) (StageRepo, error) {
		if repo != "acme/dev" {
			return nil, fmt.Errorf("%s: %w", repo, ErrRepoNotServed)
		}
		return treeRepo{Tree{Head: "dev1", FS: devTree()}}, nil
	})
	clock := &stopClock{now: t0.Add(10 * time.Minute)}
	w.engine.Clock = clock
	if r := w.tick(); r.Decision.Action != ActWait || !strings.Contains(r.Decision.Reason, "soaking until 2026-11-23T12:30:00Z") ||
		!r.Decision.Until.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("while staging soaks: %+v", r.Decision)
	}
	clock.now = t0.Add(31 * time.Minute)
	if r := w.tick(); r.Decision.Action != ActStart || r.Decision.Candidate != v2 {
		t.Fatalf("after the soak: %+v", r.Decision)
	}
	devState.Status.Failed = []Artifact{v2}
	if r := w.tick(); r.Decision.Action != ActWait || !strings.Contains(r.Decision.Reason, "was reverted in stage acme/dev:dev") {
		t.Fatalf("reverted in dev: %+v", r.Decision)
	}
	w.write(".canarybot/plans/staging.yaml", []byte(stagePlan("staging", "{name: dev, repository: acme/elsewhere}")))
	if _, err := w.engine.Tick(context.Background()); !IsTerminal(err) || !errors.Is(err, ErrRepoNotServed) {
		t.Fatalf("unserved repository: %v, want a terminal ErrRepoNotServed", err)
	}
}
