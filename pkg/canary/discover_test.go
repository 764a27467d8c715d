package canary

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// namedPlan is goodPlan renamed, with its own overlay and Application.
func namedPlan(name string) string {
	return strings.NewReplacer("name: fraud-detector", "name: "+name,
		"overlays/fraud-detector", "overlays/"+name, "application: fraud-detector", "application: "+name).Replace(goodPlan)
}

func TestDiscoverFindsEveryPlanAndReportsEachProblem(t *testing.T) {
	fsys := fstest.MapFS{
		".canarybot/plans/a.yaml":        {Data: []byte(namedPlan("alpha"))},
		".canarybot/plans/team/two.yaml": {Data: []byte(namedPlan("beta") + "---\n# a comment only\n---\n" + namedPlan("gamma"))},
		".canarybot/plans/other.yaml":    {Data: []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nmetadata: {name: x}\n")},
		".canarybot/plans/README.md":     {Data: []byte("not yaml")},
		".canarybot/plans/bad.yaml":      {Data: []byte(strings.Replace(namedPlan("delta"), "setWeight: 10", "setWeight: ten", 1))},
		".canarybot/plans/typo.yml":      {Data: []byte(strings.Replace(namedPlan("eps"), "overlay:", "overlai:", 1))},
		".canarybot/plans/link.yaml":     {Data: []byte("../../etc/passwd"), Mode: fs.ModeSymlink},
		".canarybot/plans/big.yaml":      {Data: []byte(strings.Repeat("#", MaxPlanBytes+1))},
		"elsewhere/ignored.yaml":         {Data: []byte(namedPlan("ignored"))},
	}
	c, err := Discover(Tree{Head: "h1", FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range c.Plans {
		names = append(names, e.Plan.Metadata.Name+"@"+PlanProblem{Path: e.Path, Doc: e.Doc}.Where())
	}
	want := "alpha@.canarybot/plans/a.yaml beta@.canarybot/plans/team/two.yaml gamma@.canarybot/plans/team/two.yaml (document 2)"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("plans = %s\nwant     %s", got, want)
	}
	if p, ok := c.Lookup("gamma"); !ok || p.Spec.Overlay != "manifests/overlays/gamma" {
		t.Errorf("Lookup(gamma) = %v, %v", p, ok)
	}
	if _, ok := c.Lookup("delta"); ok {
		t.Error("an invalid plan was looked up")
	}
	problems := map[string]string{}
	for _, p := range c.Invalid {
		problems[p.Where()] = p.Err.Error()
	}
	for where, wantErr := range map[string]string{
		".canarybot/plans/bad.yaml":  `spec.steps[0].setWeight: want an integer, got "ten"`,
		".canarybot/plans/typo.yml":  "overlai",
		".canarybot/plans/link.yaml": "symbolic links are refused",
		".canarybot/plans/big.yaml":  "over the",
	} {
		if !strings.Contains(problems[where], wantErr) {
			t.Errorf("%s: problem %q, want it to mention %q", where, problems[where], wantErr)
		}
	}
	if len(c.Invalid) != 4 {
		t.Errorf("%d problems, want 4: %v", len(c.Invalid), problems)
	}
	if p, ok := c.Problem("delta"); !ok || p.Path != ".canarybot/plans/bad.yaml" {
		t.Errorf("Problem(delta) = %+v, %v", p, ok)
	}
}

func TestDiscoverRefusesPlansThatClaimTheSameThings(t *testing.T) {
	sameApp := strings.Replace(namedPlan("two"), "application: two", "application: one", 1)
	fsys := fstest.MapFS{
		".canarybot/plans/one.yaml":     {Data: []byte(namedPlan("one"))},
		".canarybot/plans/two.yaml":     {Data: []byte(sameApp)},
		".canarybot/plans/three.yaml":   {Data: []byte(namedPlan("three"))},
		".canarybot/plans/three-b.yaml": {Data: []byte(namedPlan("three"))},
		".canarybot/plans/ok.yaml":      {Data: []byte(namedPlan("ok"))},
	}
	c, err := Discover(Tree{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Plans) != 1 || c.Plans[0].Plan.Metadata.Name != "ok" {
		t.Errorf("plans %+v, want only ok", c.Plans)
	}
	problems := map[string]string{}
	for _, p := range c.Invalid {
		problems[p.Path] = p.Err.Error()
	}
	for path, want := range map[string]string{
		".canarybot/plans/one.yaml":     "Argo CD Application one is also claimed by .canarybot/plans/two.yaml",
		".canarybot/plans/two.yaml":     "Argo CD Application one is also claimed by .canarybot/plans/one.yaml",
		".canarybot/plans/three.yaml":   "state file .canarybot/state/three.yaml is also claimed by .canarybot/plans/three-b.yaml",
		".canarybot/plans/three-b.yaml": "overlay manifests/overlays/three is also claimed by .canarybot/plans/three.yaml",
	} {
		if !strings.Contains(problems[path], want) {
			t.Errorf("%s: %q, want it to say %q", path, problems[path], want)
		}
	}
}

func TestDiscoverReadsTheRepositoryConfig(t *testing.T) {
	cfg := "apiVersion: canarybot.dev/v1alpha1\nkind: RepositoryConfig\nspec: {plansDir: deploy/plans}\n"
	fsys := fstest.MapFS{
		ConfigPath:                {Data: []byte(cfg)},
		"deploy/plans/a.yaml":     {Data: []byte(namedPlan("alpha"))},
		".canarybot/plans/b.yaml": {Data: []byte(namedPlan("beta"))},
	}
	c, err := Discover(Tree{FS: fsys})
	if err != nil || c.ConfigErr != nil {
		t.Fatal(err, c.ConfigErr)
	}
	if c.PlansDir != "deploy/plans" || len(c.Plans) != 1 || c.Plans[0].Plan.Metadata.Name != "alpha" {
		t.Errorf("catalog %+v", c)
	}
	for bad, want := range map[string]string{
		"apiVersion: canarybot.dev/v1alpha1\nkind: RepositoryConfig\nspec: {plansDirs: x}\n":   "plansDirs",
		"apiVersion: canarybot.dev/v1alpha1\nkind: RepositoryConfig\nspec: {plansDir: ../x}\n": "spec.plansDir",
		"apiVersion: v1\nkind: ConfigMap\n":                                                    "want apiVersion",
	} {
		fsys[ConfigPath] = &fstest.MapFile{Data: []byte(bad)}
		c, err := Discover(Tree{FS: fsys})
		if err != nil {
			t.Fatal(err)
		}
		if c.ConfigErr == nil || !strings.Contains(c.ConfigErr.Error(), want) || !strings.Contains(c.ConfigErr.Error(), ConfigPath) {
			t.Errorf("config %q: ConfigErr = %v, want it to name %s and %q", bad, c.ConfigErr, ConfigPath, want)
		}
		if c.PlansDir != DefaultPlansDir || len(c.Plans) != 1 || c.Plans[0].Plan.Metadata.Name != "beta" {
			t.Errorf("config %q: want the default plans dir to be used, got %+v", bad, c)
		}
	}
	if _, err := Discover(Tree{FS: fstest.MapFS{}}); err != nil {
		t.Errorf("a repo with no plans: %v", err)
	}
}

// With a cache, a new revision decodes only the files whose bytes changed,
// and gives the same catalog as decoding everything.
func TestDiscoverCachedDecodesOnlyChangedFiles(t *testing.T) {
	fsys := fstest.MapFS{
		".canarybot/plans/a.yaml": {Data: []byte(namedPlan("alpha"))},
		".canarybot/plans/b.yaml": {Data: []byte(namedPlan("beta"))},
	}
	var cache PlanCache
	first, err := DiscoverCached(Tree{Head: "h1", FS: fsys}, &cache)
	if err != nil {
		t.Fatal(err)
	}
	fsys[".canarybot/plans/b.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(namedPlan("beta"), "setWeight: 10", "setWeight: 20", 1))}
	second, err := DiscoverCached(Tree{Head: "h2", FS: fsys}, &cache)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Discover(Tree{Head: "h2", FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := first.Lookup("alpha")
	a2, _ := second.Lookup("alpha")
	b1, _ := first.Lookup("beta")
	b2, _ := second.Lookup("beta")
	if a1 != a2 {
		t.Error("the unchanged file was decoded again")
	}
	if b1 == b2 || *b2.Spec.Steps[0].SetWeight != 20 {
		t.Errorf("the changed file was not decoded again: %v", b2.Spec.Steps[0])
	}
	pb, _ := plain.Lookup("beta")
	if len(second.Plans) != len(plain.Plans) || *pb.Spec.Steps[0].SetWeight != *b2.Spec.Steps[0].SetWeight {
		t.Error("the cached catalog differs from a plain one")
	}
}
