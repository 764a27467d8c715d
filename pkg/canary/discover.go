package canary

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

// Where a repository keeps its plans and its canarybot settings.
const (
	ConfigPath      = ".canarybot/config.yaml"
	DefaultPlansDir = ".canarybot/plans"
	KindConfig      = "RepositoryConfig"
)

// Bounds on what discovery reads from an (untrusted) repository.
const (
	MaxPlanFiles  = 10000
	MaxConfigSize = 64 << 10
)

// RepositoryConfig is .canarybot/config.yaml: per-repository settings,
// decoded strictly like a plan.
type RepositoryConfig struct {
	APIVersion string               `json:"apiVersion"`
	Kind       string               `json:"kind"`
	Spec       RepositoryConfigSpec `json:"spec"`
}

// RepositoryConfigSpec is the body of a RepositoryConfig.
type RepositoryConfigSpec struct {
	// PlansDir is where plans live; .canarybot/plans when empty.
	PlansDir string `json:"plansDir,omitempty"`
	// Notifications are the default channels of every plan that sets none.
	Notifications []NotificationChannel `json:"notifications,omitempty"`
}

// PlanEntry is one valid plan found in a repository.
type PlanEntry struct {
	// Path is the file the plan is in; Doc its document index in the file.
	Path string
	Doc  int
	Plan *CanaryPlan
}

// PlanProblem is a plan file (or document) that could not be used, with
// every reason.
type PlanProblem struct {
	Path string
	Doc  int
	// Name is the plan's name when it could be read.
	Name string
	Err  error
}

// Where names a problem's place: the path, and the document when the file
// holds several.
func (p PlanProblem) Where() string {
	if p.Doc > 0 {
		return fmt.Sprintf("%s (document %d)", p.Path, p.Doc+1)
	}
	return p.Path
}

// Catalog is every plan of one revision of a repository: the valid ones,
// sorted by name, and the problems. It is computed once per revision and
// shared read-only.
type Catalog struct {
	Head     string
	PlansDir string
	Plans    []PlanEntry
	Invalid  []PlanProblem
	// ConfigErr is set when .canarybot/config.yaml is invalid; the default
	// plans directory is used then.
	ConfigErr error
}

// Lookup returns the valid plan named name.
func (c *Catalog) Lookup(name string) (*CanaryPlan, bool) {
	i, ok := slices.BinarySearchFunc(c.Plans, name, func(e PlanEntry, n string) int {
		return strings.Compare(e.Plan.Metadata.Name, n)
	})
	if !ok {
		return nil, false
	}
	return c.Plans[i].Plan, true
}

// Problem returns the problem reported for the plan named name, if any.
func (c *Catalog) Problem(name string) (PlanProblem, bool) {
	for _, p := range c.Invalid {
		if p.Name == name {
			return p, true
		}
	}
	return PlanProblem{}, false
}

// Discover finds every CanaryPlan document under the repository's plans
// directory in t. A file or document that cannot be read, decoded or
// validated, and plans that claim the same name, overlay or Argo CD
// Application, are reported in Invalid and do not stop the others.
// GateTemplate documents under the same directory are resolved into the
// plans that reference them; documents of other kinds are skipped.
// Discover fails only when the plans directory cannot be listed at all.
func Discover(t Tree) (*Catalog, error) { return DiscoverCached(t, nil) }

// DiscoverCached is Discover with the decoding of each plan file kept in
// cache by the file's content, so that a new revision re-decodes only the
// files that changed. A nil cache decodes everything.
func DiscoverCached(t Tree, cache *PlanCache) (*Catalog, error) {
	c := &Catalog{Head: t.Head, PlansDir: DefaultPlansDir}
	cfg, err := readConfig(t.FS)
	if err != nil {
		c.ConfigErr = fmt.Errorf("%s: %w", ConfigPath, err)
	} else if cfg != nil && cfg.Spec.PlansDir != "" {
		c.PlansDir = cfg.Spec.PlansDir
	}
	files, err := planFiles(t.FS, c.PlansDir)
	if err != nil {
		return nil, err
	}
	var found []PlanEntry
	var templates []templateEntry
	var pending []pendingPlan
	for _, f := range files {
		if f.err != nil {
			c.Invalid = append(c.Invalid, PlanProblem{Path: f.path, Err: f.err})
			continue
		}
		d := cache.decode(t.FS, f.path)
		found = append(found, d.plans...)
		c.Invalid = append(c.Invalid, d.problems...)
		templates = append(templates, d.templates...)
		pending = append(pending, d.pending...)
	}
	if len(pending) > 0 || len(templates) > 0 {
		plans, problems := resolvePending(templates, pending)
		found = append(found, plans...)
		c.Invalid = append(c.Invalid, problems...)
	}
	c.Plans, c.Invalid = refuseClaims(found, c.Invalid)
	c.Plans, c.Invalid = refusePipelines(c.Plans, c.Invalid)
	slices.SortFunc(c.Plans, func(a, b PlanEntry) int { return strings.Compare(a.Plan.Metadata.Name, b.Plan.Metadata.Name) })
	slices.SortFunc(c.Invalid, func(a, b PlanProblem) int {
		return cmpOr(strings.Compare(a.Path, b.Path), a.Doc-b.Doc)
	})
	return c, nil
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// readConfig reads .canarybot/config.yaml; nil when there is none.
func readConfig(fsys fs.FS) (*RepositoryConfig, error) {
	b, err := ReadRepoFile(fsys, ConfigPath, MaxConfigSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cfg RepositoryConfig
	if err := decodeStrict(b, &cfg); err != nil {
		return nil, err
	}
	normalizeNotifications(cfg.Spec.Notifications)
	var errs []error
	if cfg.APIVersion != APIVersion || cfg.Kind != KindConfig {
		errs = append(errs, fmt.Errorf("want apiVersion %s and kind %s, got %q and %q", APIVersion, KindConfig, cfg.APIVersion, cfg.Kind))
	}
	if d := cfg.Spec.PlansDir; d != "" {
		if err := CheckRepoPath(d); err != nil {
			errs = append(errs, fmt.Errorf("spec.plansDir: %w", err))
		}
	}
	validateNotifications("spec.notifications", cfg.Spec.Notifications, func(f, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", f, fmt.Sprintf(format, args...)))
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &cfg, nil
}

type planFile struct {
	path string
	err  error
}

// planFiles lists the YAML files under dir, recursively; a link is listed
// with its refusal. A missing dir holds no plans.
func planFiles(fsys fs.FS, dir string) ([]planFile, error) {
	var out []planFile
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist) && p == dir:
			return fs.SkipAll
		case err != nil:
			return err
		case d.IsDir():
			return nil
		case !strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml"):
			return nil
		case len(out) >= MaxPlanFiles:
			return fmt.Errorf("more than %d plan files under %s", MaxPlanFiles, dir)
		case !d.Type().IsRegular():
			out = append(out, planFile{path: p, err: Terminalf("not a regular file (%v): symbolic links are refused", d.Type())})
		default:
			out = append(out, planFile{path: p})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list plans under %s: %w", dir, err)
	}
	return out, nil
}

// PlanCache remembers decoded plan files by path and content. Plans it
// hands out are shared: callers must not modify them. Safe for concurrent
// use; the zero value is ready.
type PlanCache struct {
	mu    sync.Mutex
	files map[planKey]decodedFile
}

type planKey struct {
	path string
	sum  [sha256.Size]byte
}

type decodedFile struct {
	plans     []PlanEntry
	problems  []PlanProblem
	templates []templateEntry
	pending   []pendingPlan
}

// templateEntry is one valid GateTemplate document.
type templateEntry struct {
	path string
	doc  int
	t    *GateTemplate
}

// pendingPlan is a plan document that uses templates: it is parsed once
// the revision's templates are all known.
type pendingPlan struct {
	path string
	doc  int
	data []byte
}

const maxCachedPlanFiles = 1 << 15

// decode decodes the file at p, or returns what it decoded for the same
// bytes before.
func (c *PlanCache) decode(fsys fs.FS, p string) decodedFile {
	b, err := ReadRepoFile(fsys, p, MaxPlanBytes)
	if err != nil {
		return decodedFile{problems: []PlanProblem{{Path: p, Err: err}}}
	}
	if c == nil {
		return decodePlanFile(p, b)
	}
	key := planKey{path: p, sum: sha256.Sum256(b)}
	c.mu.Lock()
	d, ok := c.files[key]
	c.mu.Unlock()
	if ok {
		return d
	}
	d = decodePlanFile(p, b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.files == nil || len(c.files) >= maxCachedPlanFiles {
		c.files = map[planKey]decodedFile{}
	}
	c.files[key] = d
	return d
}

// decodePlanFile decodes every CanaryPlan and GateTemplate document of the
// file at p; plans that use templates are left pending.
func decodePlanFile(p string, b []byte) decodedFile {
	var out decodedFile
	for i, doc := range splitDocuments(b) {
		var head struct {
			Kind     string     `json:"kind"`
			Metadata ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			out.problems = append(out.problems, PlanProblem{Path: p, Doc: i, Err: fmt.Errorf("%w: decode: %w", ErrInvalidPlan, err)})
			continue
		}
		switch head.Kind {
		case KindGateTemplate:
			t, err := ParseGateTemplate(doc)
			if err != nil {
				out.problems = append(out.problems, PlanProblem{Path: p, Doc: i, Err: err})
				continue
			}
			out.templates = append(out.templates, templateEntry{path: p, doc: i, t: t})
			continue
		case KindCanaryPlan:
		default:
			continue
		}
		plan, err := DecodePlan(doc)
		if err == nil && plan.UsesTemplates() {
			out.pending = append(out.pending, pendingPlan{path: p, doc: i, data: doc})
			continue
		}
		if err == nil {
			if verr := plan.Validate(); verr != nil {
				err = fmt.Errorf("%w: %w", ErrInvalidPlan, verr)
			}
		}
		if err != nil {
			out.problems = append(out.problems, PlanProblem{Path: p, Doc: i, Name: head.Metadata.Name, Err: err})
			continue
		}
		out.plans = append(out.plans, PlanEntry{Path: p, Doc: i, Plan: plan})
	}
	return out
}

// resolvePending builds the revision's templates (a name defined twice is
// a problem, and neither definition is used) and parses each pending plan
// with them.
func resolvePending(templates []templateEntry, pending []pendingPlan) ([]PlanEntry, []PlanProblem) {
	set := GateTemplates{}
	where := map[string][]templateEntry{}
	for _, e := range templates {
		where[e.t.Metadata.Name] = append(where[e.t.Metadata.Name], e)
	}
	var problems []PlanProblem
	for name, es := range where {
		if len(es) == 1 {
			set[name] = es[0].t
			continue
		}
		for _, e := range es {
			problems = append(problems, PlanProblem{Path: e.path, Doc: e.doc,
				Err: fmt.Errorf("GateTemplate %s is defined %d times; none of them is used", name, len(es))})
		}
	}
	var plans []PlanEntry
	for _, pp := range pending {
		plan, err := ParsePlanWith(pp.data, set)
		if err != nil {
			var head struct {
				Metadata ObjectMeta `json:"metadata"`
			}
			_ = yaml.Unmarshal(pp.data, &head) // it decoded strictly before
			problems = append(problems, PlanProblem{Path: pp.path, Doc: pp.doc, Name: head.Metadata.Name, Err: err})
			continue
		}
		plans = append(plans, PlanEntry{Path: pp.path, Doc: pp.doc, Plan: plan})
	}
	return plans, problems
}

// splitDocuments splits a YAML stream at its "---" lines, dropping
// documents that hold only comments and blank lines.
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	content := false
	flush := func() {
		if content {
			docs = append(docs, cur)
		}
		cur, content = nil, false
	}
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if bytes.Equal(t, []byte("---")) || bytes.HasPrefix(line, []byte("--- ")) {
			flush()
			continue
		}
		if len(t) > 0 && t[0] != '#' {
			content = true
		}
		cur = append(cur, line...)
	}
	flush()
	return docs
}

// refuseClaims moves to problems every plan that shares its name (and so
// its state file), overlay or Argo CD Application with another: neither
// is driven until one of them changes.
func refuseClaims(plans []PlanEntry, problems []PlanProblem) ([]PlanEntry, []PlanProblem) {
	claims := map[string][]int{}
	for i, e := range plans {
		s := e.Plan.Spec
		for _, k := range []string{"state file " + StatePath(e.Plan.Metadata.Name), "overlay " + path.Clean(s.Overlay),
			"Argo CD Application " + s.ArgoCD.Application} {
			claims[k] = append(claims[k], i)
		}
	}
	why := map[int][]error{}
	for what, idx := range claims {
		if len(idx) < 2 {
			continue
		}
		for _, i := range idx {
			var others []string
			for _, j := range idx {
				if j != i {
					others = append(others, PlanProblem{Path: plans[j].Path, Doc: plans[j].Doc}.Where())
				}
			}
			why[i] = append(why[i], fmt.Errorf("%s is also claimed by %s", what, strings.Join(others, ", ")))
		}
	}
	var keep []PlanEntry
	for i, e := range plans {
		if errs := why[i]; len(errs) > 0 {
			slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
			problems = append(problems, PlanProblem{Path: e.Path, Doc: e.Doc, Name: e.Plan.Metadata.Name, Err: errors.Join(errs...)})
			continue
		}
		keep = append(keep, e)
	}
	return keep, problems
}
