package canary

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"sigs.k8s.io/yaml"
)

// examplePlans are the plans in the repository's examples/ folder.
func examplePlans(f *testing.F) [][]byte {
	f.Helper()
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no example plans in ../../examples: %v", err)
	}
	var out [][]byte
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out, []byte(goodPlan))
}

// FuzzParsePlan checks that ParsePlan never panics, fails only with a
// message wrapping ErrInvalidPlan, and that a plan it accepts validates
// again, is unchanged by defaulting again, and parses back to itself from
// its own YAML.
func FuzzParsePlan(f *testing.F) {
	for _, b := range examplePlans(f) {
		f.Add(b)
	}
	for _, s := range []string{
		"", "---\n", "{}", "null", "[]", "kind: CanaryPlan\n",
		goodPlan + "---\n" + goodPlan,
		strings.Replace(goodPlan, "setWeight: 10", "setWeight: ten", 1),
		strings.Replace(goodPlan, "overlay:", "overlai:", 1),
		strings.Replace(goodPlan, "interval: 30s", "interval: 30s\n      interval: 1m", 1),
		"apiVersion: canarybot.dev/v1alpha1\nkind: CanaryPlan\nmetadata: {name: &a x}\nspec: *a\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePlan(b)
		if err != nil {
			if p != nil || err.Error() == "" || !errors.Is(err, ErrInvalidPlan) {
				t.Fatalf("ParsePlan = %v, %q: want no plan and a message wrapping ErrInvalidPlan", p, err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("an accepted plan does not validate again: %v", err)
		}
		before := mustJSON(t, p)
		p.Default()
		if after := mustJSON(t, p); !bytes.Equal(before, after) {
			t.Fatalf("defaulting an accepted plan again changed it:\n%s\n%s", before, after)
		}
		y, err := yaml.Marshal(p)
		if err != nil {
			t.Fatalf("marshal an accepted plan: %v", err)
		}
		again, err := ParsePlan(y)
		if err != nil {
			t.Fatalf("an accepted plan's own YAML does not parse: %v\n%s", err, y)
		}
		if got := mustJSON(t, again); !bytes.Equal(before, got) {
			t.Fatalf("an accepted plan changed through its YAML:\n%s\n%s", before, got)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return b
}

// FuzzParseState checks that ParseState never panics, fails only with a
// message wrapping ErrInvalidState, and that a state it accepts is a
// RolloutState whose MarshalState output parses to the same state.
func FuzzParseState(f *testing.F) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	stable := Artifact{URI: "oci://ghcr.io/acme/fraud-detector@sha256:" + strings.Repeat("a", 64), Version: "v1"}
	idle := NewState("fraud-detector", stable)
	running := NewState("qwen", Artifact{URI: "models:/qwen/3", Version: "3", StorageURI: "s3://bucket/qwen/3"})
	running.Status = StateStatus{Phase: PhaseProgressing, Stable: running.Status.Stable,
		Candidate: Artifact{URI: "models:/qwen/4", Version: "4"}, StepsHash: "0123456789abcdef",
		RolloutStartedAt: at, StepIndex: 2, Weight: 25, StepStartedAt: at.Add(time.Minute),
		Gates:   []GateResult{{Gate: "errors", Verdict: VerdictSuccessful, Query: "sum(rate(errors[1m]))", Successful: 3}},
		Failed:  []Artifact{{URI: "models:/qwen/2"}},
		History: []HistoryEntry{{At: at, Action: "start", Step: 0, Weight: 10, Artifact: "models:/qwen/4", Reason: "new version"}}}
	for _, s := range []*RolloutState{idle, running} {
		b, err := MarshalState(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"", "{}", "null", "kind: RolloutState\n", "apiVersion: canarybot.dev/v1alpha1\nkind: RolloutState\nstatus: {weight: x}\n",
		"apiVersion: canarybot.dev/v1alpha1\nkind: RolloutState\nstatus: {stepStartedAt: yesterday}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseState(b)
		if err != nil {
			if s != nil || err.Error() == "" || !errors.Is(err, ErrInvalidState) {
				t.Fatalf("ParseState = %v, %q: want no state and a message wrapping ErrInvalidState", s, err)
			}
			return
		}
		if s.APIVersion != APIVersion || s.Kind != KindState {
			t.Fatalf("accepted a %s %s", s.APIVersion, s.Kind)
		}
		out, err := MarshalState(s)
		if err != nil {
			t.Fatalf("marshal an accepted state: %v", err)
		}
		again, err := ParseState(out)
		if err != nil {
			t.Fatalf("an accepted state's own YAML does not parse: %v\n%s", err, out)
		}
		if out2, _ := MarshalState(again); !bytes.Equal(out, out2) {
			t.Fatalf("an accepted state changed through its YAML:\n%s\n%s", out, out2)
		}
	})
}

// FuzzDiscover runs Discover over a repository of a config file, a plan
// file in the default plans directory and a second file at a path of the
// input's choosing, and checks what it returns: valid plans that validate,
// sorted by unique name, inside the plans directory and claiming nothing
// another claims; a reason for every problem; the same answer twice.
func FuzzDiscover(f *testing.F) {
	plans := examplePlans(f)
	config := "apiVersion: canarybot.dev/v1alpha1\nkind: RepositoryConfig\nspec: {plansDir: deploy/plans}\n"
	f.Add("", ".canarybot/plans/team/b.yaml", plans[0], plans[2]) // two plans
	f.Add("", ".canarybot/plans/b.yml", plans[0], plans[1])       // both fraud-detector
	f.Add(config, "deploy/plans/b.yaml", plans[0], append(append(plans[1], "---\n"...), plans[2]...))
	f.Add(config, "deploy/plans/x/../b.yaml", []byte("kind: GateTemplate\n"), plans[len(plans)-1])
	f.Add("spec: {plansDir: ../x}\n", ".canarybot/plans/c.yaml", []byte("{"), []byte("# only a comment\n---\n"))
	f.Fuzz(func(t *testing.T, config, second string, a, b []byte) {
		fsys := fstest.MapFS{DefaultPlansDir + "/a.yaml": {Data: a}}
		if config != "" {
			fsys[ConfigPath] = &fstest.MapFile{Data: []byte(config)}
		}
		if fs.ValidPath(second) && second != "." && second != DefaultPlansDir+"/a.yaml" {
			fsys[second] = &fstest.MapFile{Data: b}
		}
		c, err := Discover(Tree{Head: "h", FS: fsys})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("Discover failed with an empty message")
			}
			return
		}
		checkCatalog(t, c)
		again, err := Discover(Tree{Head: "h", FS: fsys})
		if err != nil || catalogSummary(again) != catalogSummary(c) {
			t.Fatalf("Discover is not deterministic:\n%s\n%s (%v)", catalogSummary(c), catalogSummary(again), err)
		}
	})
}

func checkCatalog(t *testing.T, c *Catalog) {
	t.Helper()
	if c.ConfigErr != nil && (c.PlansDir != DefaultPlansDir || c.ConfigErr.Error() == "") {
		t.Fatalf("config error %q, yet plans read from %q", c.ConfigErr, c.PlansDir)
	}
	claimed := map[string]string{}
	for i, e := range c.Plans {
		if err := e.Plan.Validate(); err != nil {
			t.Fatalf("plan %s in %s does not validate: %v", e.Plan.Metadata.Name, e.Path, err)
		}
		if i > 0 && c.Plans[i-1].Plan.Metadata.Name >= e.Plan.Metadata.Name {
			t.Fatalf("plans not sorted by unique name: %q then %q", c.Plans[i-1].Plan.Metadata.Name, e.Plan.Metadata.Name)
		}
		if e.Path != c.PlansDir && !strings.HasPrefix(e.Path, c.PlansDir+"/") {
			t.Fatalf("plan %s found at %s, outside %s", e.Plan.Metadata.Name, e.Path, c.PlansDir)
		}
		for _, k := range []string{"overlay " + path.Clean(e.Plan.Spec.Overlay), "app " + e.Plan.Spec.ArgoCD.Application} {
			if other, ok := claimed[k]; ok {
				t.Fatalf("%s claimed by %s and %s", k, other, e.Path)
			}
			claimed[k] = e.Path
		}
		if p, ok := c.Lookup(e.Plan.Metadata.Name); !ok || p != e.Plan {
			t.Fatalf("Lookup(%q) does not find its plan", e.Plan.Metadata.Name)
		}
	}
	for _, p := range c.Invalid {
		if p.Path == "" || p.Err == nil || p.Err.Error() == "" {
			t.Fatalf("problem %+v has no place or no reason", p)
		}
	}
}

// catalogSummary is what Discover found, as text.
func catalogSummary(c *Catalog) string {
	var lines []string
	for _, e := range c.Plans {
		lines = append(lines, "plan "+e.Plan.Metadata.Name+" "+PlanProblem{Path: e.Path, Doc: e.Doc}.Where())
	}
	for _, p := range c.Invalid {
		lines = append(lines, "problem "+p.Where()+" "+p.Name+": "+p.Err.Error())
	}
	return c.PlansDir + "\n" + strings.Join(lines, "\n")
}
