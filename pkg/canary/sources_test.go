package canary

import (
	"context"
	"errors"
	"os"
	"path"
	"strings"
	"testing"
	"time"
)

var (
	// v1moved and v2moved are tags v1 and v2 pushed again to new content.
	v1moved = Artifact{URI: "oci://ghcr.io/acme/qwen@sha256:" + strings.Repeat("9", 64), Version: "v1"}
	v2moved = Artifact{URI: "oci://ghcr.io/acme/qwen@sha256:" + strings.Repeat("8", 64), Version: "v2"}
	// mlflow7 is an MLflow version pinned by number, stored on S3.
	mlflow7 = Artifact{URI: "models:/qwen/7", Version: "7", StorageURI: "s3://mlflow/1/abc/artifacts/model"}
)

// withSource replaces goodPlan's OCI source with src (YAML flow mapping).
func withSource(src string) string {
	return strings.Replace(goodPlan, "oci: {repository: ghcr.io/acme/fraud-detector}", src, 1)
}

func TestValidateSources(t *testing.T) {
	digest := "sha256:" + strings.Repeat("a", 64)
	cases := []struct {
		name string
		src  string
		want []string // empty: valid
	}{
		{name: "oci semver", src: `oci: {repository: r.io/a/b, semver: ">=1.0.0"}`},
		{name: "oci regex", src: `oci: {repository: r.io/a/b, policy: regex, tagRegex: '^build-(\d+)$'}`},
		{name: "oci latest", src: `oci: {repository: r.io/a/b, policy: latest, tagRegex: '^main-', createdAnnotation: build.time}`},
		{name: "mlflow alias and tags", src: "mlflow: {trackingURI: 'https://mlflow.example.com/prefix', model: fraud.v2, alias: challenger, " +
			"requireTags: {validation_status: approved}}"},
		{name: "static digest", src: "static: {uri: 'oci://r.io/a/b@" + digest + "', version: v7}"},
		{name: "static s3 version", src: "static: {uri: 's3://bucket/model.bin?versionId=abc'}"},
		{name: "two sources", src: "oci: {repository: r.io/a/b}\n      mlflow: {trackingURI: 'http://m:5000', model: m}",
			want: []string{"spec.model.source: exactly one source is required (oci, mlflow, static or fromPlan), got 2"}},
		{name: "no source", src: "{}", want: []string{"spec.model.source: exactly one source is required"}},
		{name: "unknown policy", src: "oci: {repository: r.io/a/b, policy: newest}",
			want: []string{`spec.model.source.oci.policy: must be "semver", "regex" or "latest", got "newest"`}},
		{name: "regex without pattern", src: "oci: {repository: r.io/a/b, policy: regex}",
			want: []string{`spec.model.source.oci.tagRegex: is required with policy "regex"`}},
		{name: "bad pattern", src: "oci: {repository: r.io/a/b, tagRegex: '(('}",
			want: []string{"spec.model.source.oci.tagRegex: error parsing regexp"}},
		{name: "semver with latest", src: "oci: {repository: r.io/a/b, policy: latest, semver: '>1'}",
			want: []string{`spec.model.source.oci.semver: applies only with policy "semver"`}},
		{name: "mlflow bad URI", src: "mlflow: {trackingURI: 'ftp://m', model: m}",
			want: []string{"spec.model.source.mlflow.trackingURI: must be an http:// or https:// URL"}},
		{name: "mlflow credentials in URI", src: "mlflow: {trackingURI: 'https://u:p@m', model: m}",
			want: []string{"spec.model.source.mlflow.trackingURI: must not carry credentials"}},
		{name: "mlflow bad model and alias", src: "mlflow: {trackingURI: 'http://m', model: 'a b', alias: v3}",
			want: []string{"spec.model.source.mlflow.model: model name", `spec.model.source.mlflow.alias: "v3" is reserved`}},
		{name: "static tag is mutable", src: "static: {uri: 'oci://r.io/a/b:v2'}",
			want: []string{`spec.model.source.static.uri: artifact reference "oci://r.io/a/b:v2" is mutable: tag "v2" can move to another digest; pin it as oci://r.io/a/b@sha256:<digest>`}},
		{name: "static mlflow alias is mutable", src: "static: {uri: 'models:/m@champion'}",
			want: []string{`alias "champion" can be reassigned`}},
		{name: "static unversioned object", src: "static: {uri: 's3://bucket/model.bin'}",
			want: []string{"spec.model.source.static.uri:", "pin it as s3://bucket/model.bin?versionId=<id>"}},
		{name: "static mlflow version needs the mlflow source", src: "static: {uri: 'models:/m/3'}",
			want: []string{"spec.model.source.static.uri: models:/m/3 is an MLflow version"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePlan([]byte(withSource(tc.src)))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("valid source rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPlan) {
				t.Fatalf("err = %v, want ErrInvalidPlan", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestMutableStaticSourceIsErrMutableReference(t *testing.T) {
	p, err := DecodePlan([]byte(withSource("static: {uri: 'oci://r.io/a/b:v2'}")))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "mutable") {
		t.Fatalf("Validate = %v", err)
	}
}

func TestSourceDecodesStrictly(t *testing.T) {
	_, err := ParsePlan([]byte(withSource("mlflow: {trackingURI: 'http://m', model: m, alais: challenger}")))
	if err == nil || !strings.Contains(err.Error(), "spec.model.source.mlflow.alais: unknown field") {
		t.Fatalf("err = %v, want the misspelt field named", err)
	}
	p, err := ParsePlan([]byte(withSource("mlflow: {trackingURI: 'http://m', model: m, requireTags: {a: b, c: d}}")))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Spec.Model.Source.MLflow.RequireTags; len(got) != 2 || got["a"] != "b" || got["c"] != "d" {
		t.Errorf("requireTags = %v", got)
	}
	if p, err := ParsePlan([]byte(goodPlan)); err != nil || p.Spec.Model.Source.OCI.Policy != OCIPolicySemver {
		t.Errorf("oci policy default: %v, %v", p, err)
	}
}

func TestDesiredUsesTheStorageLocation(t *testing.T) {
	st := NewState("qwen", Artifact{URI: "s3://mlflow/1/old/artifacts/model"})
	st = Apply(testPlan(), st, Decision{Action: ActStart, Candidate: mlflow7, Weight: 10}, t0)
	d := DesiredOf(st)
	if d.Canary != mlflow7.StorageURI || d.Stable != "s3://mlflow/1/old/artifacts/model" || d.CanaryWeight != 10 {
		t.Errorf("Desired = %+v, want the canary's storage location", d)
	}
	ch := CommitMessage(testPlan(), NewState("qwen", v1), st, Decision{Action: ActStart})
	if ch.Trailers[3] != (Trailer{TrailerArtifact, "models:/qwen/7"}) {
		t.Errorf("the artifact trailer must carry the pinned version: %v", ch.Trailers)
	}
}

func TestRetry(t *testing.T) {
	st := state(PhaseReverted, 0, func(s *StateStatus) { s.Failed = []Artifact{v2, v3} })
	after, removed, err := Retry(st, v2.URI, "", t0)
	if err != nil {
		t.Fatal(err)
	}
	if removed != v2 || after.Status.IsFailed(v2.URI) || !after.Status.IsFailed(v3.URI) || !st.Status.IsFailed(v2.URI) {
		t.Fatalf("after retry: %+v (before: %+v)", after.Status.Failed, st.Status.Failed)
	}
	h := after.Status.History[len(after.Status.History)-1]
	if h.Action != ActionRetry || h.Artifact != v2.URI || !strings.Contains(h.Reason, "a person asked to retry v2") {
		t.Errorf("history entry = %+v", h)
	}
	ch, err := RetryChange(after, removed)
	if err != nil {
		t.Fatal(err)
	}
	want := []Trailer{{TrailerPlan, "qwen"}, {TrailerStep, "0"}, {TrailerAction, "retry"}, {TrailerArtifact, v2.URI}}
	for i, tr := range want {
		if ch.Trailers[i] != tr {
			t.Errorf("trailer %d = %v, want %v", i, ch.Trailers[i], tr)
		}
	}
	if back, err := ParseState(ch.Files[StatePath("qwen")]); err != nil || back.Status.IsFailed(v2.URI) {
		t.Errorf("committed state: %v, %v", back, err)
	}
	_, _, err = Retry(after, v2.URI, "", t0)
	if !errors.Is(err, ErrNotFailed) || !strings.Contains(err.Error(), "failed: "+v3.URI) {
		t.Errorf("second retry: %v, want ErrNotFailed listing v3", err)
	}
}

// gitWorld is a world whose commits land in its tree, as a real repo's
// would, so that consecutive ticks see each other's transitions.
func gitWorld(t *testing.T, st *RolloutState) *world {
	w := newWorld(t, st)
	w.repo.TransactFn = func(ctx context.Context, fn TransactFunc) (CommitResult, error) {
		ch, err := fn(ctx, Tree{Head: "head1", FS: os.DirFS(w.dir)})
		if err != nil || ch == nil {
			return CommitResult{NoOp: true}, err
		}
		for p, b := range ch.Files {
			w.write(path.Clean(p), b)
		}
		w.commits = append(w.commits, ch)
		return CommitResult{SHA: "c" + string(rune('0'+len(w.commits)))}, nil
	}
	w.gates.EvaluateFn = func(_ context.Context, g GateSpec, _ Window) (GateResult, error) {
		return GateResult{Gate: g.Name, Verdict: VerdictSuccessful}, nil
	}
	return w
}

func (w *world) tick() Report {
	w.t.Helper()
	r, err := w.engine.Tick(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// A reverted digest is never proposed again, tick after tick, for hours
// of polling, until a person's retry takes it off the failed list.
func TestEngineNeverReproposesAFailedDigest(t *testing.T) {
	plan := mustPlan(t)
	st := Apply(plan, NewState("qwen", v1), Decision{Action: ActStart, Candidate: v2, Weight: 10}, t0)
	st = Apply(plan, st, Decision{Action: ActRevert, Reason: "gate errors failed"}, t0)
	w := gitWorld(t, st)
	clock := &stopClock{now: t0}
	w.engine.Clock = clock
	for i := 0; i < 6*60; i++ { // a poll a minute for six hours
		clock.now = clock.now.Add(time.Minute)
		if r := w.tick(); r.Decision.Action != ActWait || !strings.Contains(r.Decision.Reason, "reverted before") {
			t.Fatalf("tick %d, %s after the revert: %+v", i, clock.now.Sub(t0), r.Decision)
		}
	}
	if len(w.commits) != 0 {
		t.Fatalf("%d commits for a failed artifact", len(w.commits))
	}
	// The same tag pushed again to new content is reported, not deployed.
	w.engine.Artifacts = &fakeArtifacts{LatestFn: func(context.Context, *CanaryPlan) (*Artifact, error) { return &v2moved, nil }}
	if r := w.tick(); r.Decision.Action != ActWait || !strings.Contains(r.Decision.Reason, "tag v2 moved") {
		t.Fatalf("moved tag: %+v", r.Decision)
	}
	w.engine.Artifacts = &fakeArtifacts{LatestFn: func(context.Context, *CanaryPlan) (*Artifact, error) { return &v2, nil }}
	retried, removed, err := Retry(st, v2.URI, "fixed the feature pipeline", t0)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := RetryChange(retried, removed)
	if err != nil {
		t.Fatal(err)
	}
	w.write(StatePath("qwen"), ch.Files[StatePath("qwen")])
	if r := w.tick(); r.Decision.Action != ActStart || r.Decision.Candidate != v2 {
		t.Fatalf("after retry: %+v", r.Decision)
	}
}

// v2 and v3 arrive together while v2 is in canary: with queue (the
// default) the watcher's newest, v3, waits until v2's rollout ends, then
// starts from step 0.
func TestEngineQueuesAVersionArrivingMidRollout(t *testing.T) {
	w := gitWorld(t, nil)
	offered := &v2
	w.engine.Artifacts = &fakeArtifacts{LatestFn: func(context.Context, *CanaryPlan) (*Artifact, error) { return offered, nil }}
	if r := w.tick(); r.Decision.Action != ActStart || r.Decision.Candidate != v2 {
		t.Fatalf("first tick: %+v", r.Decision)
	}
	offered = &v3
	clock := &stopClock{now: t0}
	w.engine.Clock = clock
	var actions []Action
	for i := 0; i < 10 && len(actions) < 4; i++ {
		clock.now = clock.now.Add(3 * time.Minute) // past every pause
		r := w.tick()
		if r.Decision.Action.Commits() {
			actions = append(actions, r.Decision.Action)
			if r.State.Status.Candidate == v3 && r.Decision.Action != ActStart {
				t.Fatalf("v3 progressed before v2 finished: %+v", r.Decision)
			}
		}
	}
	want := []Action{ActAdvance, ActAdvance, ActAdvance, ActPromote}
	if len(actions) < 4 || strings.Join(actionNames(actions[:4]), ",") != strings.Join(actionNames(want), ",") {
		t.Fatalf("v2's rollout: %v, want %v", actions, want)
	}
	r := w.tick()
	if r.Decision.Action != ActStart || r.Decision.Candidate != v3 || r.State.Status.Stable != v2 {
		t.Fatalf("after v2's promotion: %+v (state %+v)", r.Decision, r.State.Status)
	}
}

func actionNames(as []Action) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = string(a)
	}
	return out
}
