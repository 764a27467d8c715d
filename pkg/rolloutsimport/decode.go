// Package rolloutsimport converts an Argo Rollouts canary Rollout and the
// AnalysisTemplates it references into a canarybot CanaryPlan.
//
// It decodes the manifests with its own minimal structs (no Argo Rollouts
// Go module): of a Rollout, metadata.name and spec.strategy.canary's
// steps, analysis, stableService, canaryService and trafficRouting; of an
// AnalysisTemplate or ClusterAnalysisTemplate, metadata.name, spec.args
// and spec.metrics (name, interval, initialDelay, count, failureLimit,
// inconclusiveLimit, consecutiveErrorLimit, successCondition,
// failureCondition, provider.prometheus.query). Every other key under the
// canary strategy, a step, a metric or its provider is reported as not
// carried over, with its YAML path; the rest of the Rollout (selector,
// pod template, replicas) is not read at all.
package rolloutsimport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Input is one file given to the importer: its name (for messages) and
// its bytes. A file may hold several YAML documents separated by "---".
type Input struct {
	Name string
	Data []byte
}

// Kinds read.
const (
	KindRollout                 = "Rollout"
	KindAnalysisTemplate        = "AnalysisTemplate"
	KindClusterAnalysisTemplate = "ClusterAnalysisTemplate"
)

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

type rollout struct {
	header
	file string
	Spec struct {
		Strategy map[string]json.RawMessage `json:"strategy"`
	} `json:"spec"`
}

// argument is an Argo Rollouts Argument: a value, or a valueFrom that
// only the cluster can resolve.
type argument struct {
	Name      string          `json:"name"`
	Value     *string         `json:"value,omitempty"`
	ValueFrom json.RawMessage `json:"valueFrom,omitempty"`
}

type template struct {
	header
	file string
	Spec struct {
		Args    []argument                   `json:"args"`
		Metrics []map[string]json.RawMessage `json:"metrics"`
		DryRun  json.RawMessage              `json:"dryRun,omitempty"`
		Retain  json.RawMessage              `json:"measurementRetention,omitempty"`
	} `json:"spec"`
}

// label names a template in messages: "AnalysisTemplate error-rate".
func (t *template) label() string { return t.Kind + " " + t.Metadata.Name }

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocs returns the non-empty YAML documents of data.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range docSep.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// sources are the decoded inputs: exactly one Rollout and the templates
// by kind and name.
type sources struct {
	rollout   *rollout
	templates map[string]*template // key: kind + "/" + name
	files     []string
}

// load decodes the Rollout file and the template files. In the Rollout's
// file, documents of other kinds (Services, routes) are skipped; in a
// template file every document must be a template.
func load(ro Input, tmpls []Input) (*sources, error) {
	s := &sources{templates: map[string]*template{}}
	for i, in := range append([]Input{ro}, tmpls...) {
		s.files = append(s.files, in.Name)
		docs := splitDocs(in.Data)
		if len(docs) == 0 {
			return nil, fmt.Errorf("%s: no YAML document", in.Name)
		}
		for j, d := range docs {
			if err := s.add(in.Name, j, len(docs), d, i == 0); err != nil {
				return nil, err
			}
		}
	}
	if s.rollout == nil {
		return nil, fmt.Errorf("%s: no document of kind %s (argoproj.io/v1alpha1)", ro.Name, KindRollout)
	}
	return s, nil
}

func (s *sources) add(file string, j, n int, doc []byte, rolloutFile bool) error {
	where := file
	if n > 1 {
		where = fmt.Sprintf("%s: document %d", file, j+1)
	}
	var h header
	if err := yaml.Unmarshal(doc, &h); err != nil {
		return fmt.Errorf("%s: not a YAML object: %w", where, err)
	}
	if h.Kind != "" && !strings.HasPrefix(h.APIVersion, "argoproj.io/") && (h.Kind == KindRollout || strings.HasSuffix(h.Kind, KindAnalysisTemplate)) {
		return fmt.Errorf("%s: apiVersion: want argoproj.io/v1alpha1, got %q", where, h.APIVersion)
	}
	switch h.Kind {
	case KindRollout:
		if !rolloutFile {
			return fmt.Errorf("%s: kind: a Rollout belongs in the first file, not among the templates", where)
		}
		if s.rollout != nil {
			return fmt.Errorf("%s: kind: a second Rollout (%q); import one at a time", where, h.Metadata.Name)
		}
		r := &rollout{file: file}
		if err := yaml.Unmarshal(doc, r); err != nil {
			return fmt.Errorf("%s: decode Rollout: %w", where, err)
		}
		s.rollout = r
	case KindAnalysisTemplate, KindClusterAnalysisTemplate:
		t := &template{file: file}
		if err := yaml.Unmarshal(doc, t); err != nil {
			return fmt.Errorf("%s: decode %s: %w", where, h.Kind, err)
		}
		if t.Metadata.Name == "" {
			return fmt.Errorf("%s: metadata.name: is required", where)
		}
		s.templates[h.Kind+"/"+t.Metadata.Name] = t
	default:
		if !rolloutFile {
			return fmt.Errorf("%s: kind: want %s or %s, got %q", where, KindAnalysisTemplate, KindClusterAnalysisTemplate, h.Kind)
		}
	}
	return nil
}

// intOrString reads an Argo IntOrString field after substituting args: a
// number, or a string holding one. ok is false when raw is absent.
func intOrString(raw json.RawMessage, subst func(string) (string, error)) (v int, ok bool, err error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, false, nil
	}
	if err := json.Unmarshal(raw, &v); err == nil {
		return v, true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, false, fmt.Errorf("want an integer, got %s", raw)
	}
	if s, err = subst(s); err != nil {
		return 0, false, err
	}
	if v, err = strconv.Atoi(strings.TrimSpace(s)); err != nil {
		return 0, false, fmt.Errorf("want an integer, got %q", s)
	}
	return v, true, nil
}

// str reads a string field; ok is false when raw is absent.
func str(raw json.RawMessage) (s string, ok bool, err error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, fmt.Errorf("want a string, got %s", raw)
	}
	return s, true, nil
}
