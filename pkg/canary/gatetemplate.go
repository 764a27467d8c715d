package canary

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// KindGateTemplate is a reusable gate that plans reference by name, with
// arguments: Argo Rollouts' AnalysisTemplate, for canarybot's gates.
const KindGateTemplate = "GateTemplate"

// MaxTemplateArgs bounds a template's arguments.
const MaxTemplateArgs = 64

// GateTemplate is a gate definition kept once in the repository, beside
// the plans, and used by any plan's spec.gates[].templateRef.
type GateTemplate struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Metadata   ObjectMeta       `json:"metadata"`
	Spec       GateTemplateSpec `json:"spec"`
}

// GateTemplateSpec is the body of a GateTemplate.
type GateTemplateSpec struct {
	// Args are the template's parameters. Each {{args.NAME}} in a string
	// field of Gate is replaced by the use's value, or Value when the use
	// gives none; an argument without Value must be given by every use.
	Args []TemplateArg `json:"args,omitempty"`
	// Gate is a gate without its name: type, threshold, judge, drift,
	// gauge and signals, as in a plan's spec.gates.
	Gate json.RawMessage `json:"gate"`
}

// TemplateArg is one parameter of a GateTemplate.
type TemplateArg struct {
	Name  string  `json:"name"`
	Value *string `json:"value,omitempty"`
}

// GateTemplateRef is a plan gate's use of a GateTemplate.
type GateTemplateRef struct {
	Name string            `json:"name"`
	Args map[string]string `json:"args,omitempty"`
}

// TemplateUse records, on a resolved gate, the template it came from and
// a hash of the template's gate and the arguments used, so that a changed
// template is noticed mid-rollout as changed steps are.
type TemplateUse struct {
	Template string
	Hash     string
}

// GateTemplates are a repository's templates by name.
type GateTemplates map[string]*GateTemplate

var (
	argName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,62}$`)
	placeholder = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)
)

// ParseGateTemplate decodes one GateTemplate document strictly and checks
// it: its name, its arguments, that its gate decodes as a gate without a
// name, and that every {{…}} in it names a declared argument.
func ParseGateTemplate(data []byte) (*GateTemplate, error) {
	if len(data) > MaxPlanBytes {
		return nil, fmt.Errorf("%w: %d bytes is over the %d-byte limit", ErrInvalidTemplate, len(data), MaxPlanBytes)
	}
	var t GateTemplate
	if err := decodeStrict(data, &t); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTemplate, err)
	}
	if err := t.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTemplate, err)
	}
	return &t, nil
}

func (t *GateTemplate) validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if t.APIVersion != APIVersion {
		add("apiVersion", "must be %q, got %q", APIVersion, t.APIVersion)
	}
	if !validName(t.Metadata.Name) {
		add("metadata.name", "must be a DNS label (lower-case letters, digits and '-', at most 63), got %q", t.Metadata.Name)
	}
	declared := map[string]bool{}
	if len(t.Spec.Args) > MaxTemplateArgs {
		add("spec.args", "at most %d arguments, got %d", MaxTemplateArgs, len(t.Spec.Args))
	}
	for i, a := range t.Spec.Args {
		f := fmt.Sprintf("spec.args[%d]", i)
		switch {
		case !argName.MatchString(a.Name):
			add(f+".name", "must be a letter or '_' then letters, digits, '_' or '-', got %q", a.Name)
		case declared[a.Name]:
			add(f+".name", "duplicate argument %q", a.Name)
		}
		declared[a.Name] = true
		if a.Value != nil {
			if err := checkArgValue(*a.Value); err != nil {
				add(f+".value", "%v", err)
			}
		}
	}
	if len(t.Spec.Gate) == 0 || string(t.Spec.Gate) == "null" {
		add("spec.gate", "is required")
		return errors.Join(errs...)
	}
	var g GateSpec
	if err := decodeStrict(t.Spec.Gate, &g); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			errs = append(errs, fmt.Errorf("spec.gate.%s", line))
		}
	} else {
		if g.Name != "" {
			add("spec.gate.name", "must be empty: the plan's use names the gate")
		}
		if g.TemplateRef != nil {
			add("spec.gate.templateRef", "a template cannot use another template")
		}
	}
	for _, name := range placeholders(t.Spec.Gate) {
		if !declared[name] {
			add("spec.gate", "{{%s}} is not a declared argument (write {{args.NAME}} with NAME in spec.args)", name)
		}
	}
	return errors.Join(errs...)
}

// placeholders lists the argument names ({{args.NAME}} → NAME; anything
// else whole) that the raw gate uses, sorted and without duplicates.
func placeholders(raw []byte) []string {
	var out []string
	for _, m := range placeholder.FindAllSubmatch(raw, -1) {
		s := string(m[1])
		if name, ok := strings.CutPrefix(s, "args."); ok && argName.MatchString(name) {
			s = name
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkArgValue refuses control characters: a value is pasted into
// queries and selectors verbatim, and a newline has no place there.
func checkArgValue(v string) error {
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("must not hold control characters, got %q", v)
		}
	}
	if len(v) > 1024 {
		return fmt.Errorf("at most 1024 bytes, got %d", len(v))
	}
	return nil
}

// UsesTemplates reports whether any gate of the plan is a templateRef.
func (p *CanaryPlan) UsesTemplates() bool {
	return slices.ContainsFunc(p.Spec.Gates, func(g GateSpec) bool { return g.TemplateRef != nil })
}

// ParsePlanWith is ParsePlan for a plan whose gates may reference
// templates: each templateRef is replaced by its template's gate with the
// arguments substituted, and the plan is then defaulted and validated as a
// whole. An unknown template or argument is a validation error.
func ParsePlanWith(data []byte, templates GateTemplates) (*CanaryPlan, error) {
	p, err := DecodePlan(data)
	if err != nil {
		return nil, err
	}
	if p.UsesTemplates() {
		if err := p.resolveTemplates(templates); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidPlan, err)
		}
		p.Default() // the resolved gates'
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPlan, err)
	}
	return p, nil
}

func (p *CanaryPlan) resolveTemplates(templates GateTemplates) error {
	var errs []error
	for i := range p.Spec.Gates {
		g := &p.Spec.Gates[i]
		ref := g.TemplateRef
		if ref == nil {
			continue
		}
		f := fmt.Sprintf("spec.gates[%d].templateRef", i)
		if g.Type != "" || g.Threshold != nil || g.Judge != nil || g.Drift != nil || g.Gauge != nil || g.GoldenSet != nil || g.Signals != nil {
			errs = append(errs, fmt.Errorf("spec.gates[%d]: a gate is either a templateRef or defined inline, not both", i))
			continue
		}
		t, ok := templates[ref.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s.name: no GateTemplate named %q%s", f, ref.Name, templates.known()))
			continue
		}
		resolved, err := t.instantiate(ref.Args)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (GateTemplate %s): %w", f, ref.Name, err))
			continue
		}
		resolved.Name = g.Name
		*g = *resolved
	}
	return errors.Join(errs...)
}

func (ts GateTemplates) known() string {
	if len(ts) == 0 {
		return " (no GateTemplate was found beside the plans)"
	}
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	sort.Strings(names)
	return " (known: " + strings.Join(names, ", ") + ")"
}

// instantiate returns the template's gate with args substituted.
func (t *GateTemplate) instantiate(args map[string]string) (*GateSpec, error) {
	values := map[string]string{}
	var errs []error
	for _, a := range t.Spec.Args {
		if a.Value != nil {
			values[a.Name] = *a.Value
		}
	}
	for _, k := range sortedStringKeys(args) {
		v := args[k]
		if !slices.ContainsFunc(t.Spec.Args, func(a TemplateArg) bool { return a.Name == k }) {
			errs = append(errs, fmt.Errorf("args.%s: the template has no such argument", k))
			continue
		}
		if err := checkArgValue(v); err != nil {
			errs = append(errs, fmt.Errorf("args.%s: %w", k, err))
			continue
		}
		values[k] = v
	}
	for _, a := range t.Spec.Args {
		if _, ok := values[a.Name]; !ok {
			errs = append(errs, fmt.Errorf("args.%s: is required (the template gives no default)", a.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(t.Spec.Gate))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("decode the template's gate: %w", err)
	}
	b, err := json.Marshal(substitute(generic, values))
	if err != nil {
		return nil, fmt.Errorf("encode the template's gate: %w", err)
	}
	var g GateSpec
	if err := decodeStrict(b, &g); err != nil {
		return nil, err
	}
	g.From = &TemplateUse{Template: t.Metadata.Name, Hash: templateHash(t.Spec.Gate, values)}
	return &g, nil
}

// substitute replaces {{args.NAME}} in every string of v. Only strings
// change, so a value cannot alter the gate's structure.
func substitute(v any, values map[string]string) any {
	switch x := v.(type) {
	case string:
		return placeholder.ReplaceAllStringFunc(x, func(m string) string {
			name, _ := strings.CutPrefix(strings.TrimSpace(m[2:len(m)-2]), "args.")
			return values[name]
		})
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = substitute(e, values)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = substitute(e, values)
		}
		return out
	}
	return v
}

func templateHash(gate []byte, values map[string]string) string {
	h := sha256.New()
	h.Write(gate)
	for _, k := range sortedStringKeys(values) {
		fmt.Fprintf(h, "\x00%s=%s", k, values[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func sortedStringKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TemplateHashes maps each templated gate of a resolved plan to its
// template and hash ("name@hash"); nil when no gate uses a template.
func TemplateHashes(p *CanaryPlan) map[string]string {
	var out map[string]string
	for _, g := range p.Spec.Gates {
		if g.From == nil {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[g.Name] = g.From.Template + "@" + g.From.Hash
	}
	return out
}

// templatesChanged says which template-made gate differs from the ones the
// rollout started with; "" when none does.
func templatesChanged(p *CanaryPlan, s StateStatus) string {
	now := TemplateHashes(p)
	var changed []string
	for _, name := range sortedStringKeys(now) {
		if s.Templates[name] != now[name] {
			tmpl, _, _ := strings.Cut(now[name], "@")
			changed = append(changed, fmt.Sprintf("gate %s (GateTemplate %s)", name, tmpl))
		}
	}
	for _, name := range sortedStringKeys(s.Templates) {
		if _, ok := now[name]; !ok {
			tmpl, _, _ := strings.Cut(s.Templates[name], "@")
			changed = append(changed, fmt.Sprintf("gate %s (no longer GateTemplate %s)", name, tmpl))
		}
	}
	if len(changed) == 0 {
		return ""
	}
	return strings.Join(changed, ", ")
}

// ResolvedYAML is the plan with its templates resolved, as plan YAML that
// ParsePlan reads without templates: for tools (the simulator) that take
// a plan's bytes.
func ResolvedYAML(p *CanaryPlan) ([]byte, error) {
	b, err := yaml.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode plan %s: %w", p.Metadata.Name, err)
	}
	return b, nil
}

// ReadTemplates reads every GateTemplate under the repository's plans
// directory in t (the one .canarybot/config.yaml names, else the default),
// for a plan read on its own (ReadPlan). A template file or document that
// does not parse is an error naming it; a name defined twice is an error.
func ReadTemplates(t Tree) (GateTemplates, error) {
	dir := DefaultPlansDir
	if cfg, err := readConfig(t.FS); err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigPath, err)
	} else if cfg != nil && cfg.Spec.PlansDir != "" {
		dir = cfg.Spec.PlansDir
	}
	files, err := planFiles(t.FS, dir)
	if err != nil {
		return nil, err
	}
	set := GateTemplates{}
	var errs []error
	for _, f := range files {
		if f.err != nil {
			continue // a link is no template; discovery reports it
		}
		b, err := ReadRepoFile(t.FS, f.path, MaxPlanBytes)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.path, err))
			continue
		}
		errs = append(errs, set.AddFile(f.path, b))
	}
	return set, errors.Join(errs...)
}

// AddFile adds every GateTemplate document of the YAML file at p (other
// kinds are skipped). A document that does not parse, or a name already
// in the set, is an error naming the file and document.
func (ts GateTemplates) AddFile(p string, b []byte) error {
	var errs []error
	for i, doc := range splitDocuments(b) {
		var head struct {
			Kind string `json:"kind"`
		}
		if yaml.Unmarshal(doc, &head) != nil || head.Kind != KindGateTemplate {
			continue
		}
		where := PlanProblem{Path: p, Doc: i}.Where()
		tmpl, err := ParseGateTemplate(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		if _, dup := ts[tmpl.Metadata.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: GateTemplate %s is defined more than once", where, tmpl.Metadata.Name))
		}
		ts[tmpl.Metadata.Name] = tmpl
	}
	return errors.Join(errs...)
}
