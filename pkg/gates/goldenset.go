package gates

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
)

// KindGoldenSet is the kind of a golden-set file.
const KindGoldenSet = "GoldenSet"

// Bounds of a golden set.
const (
	MaxGoldenCases        = 1000
	MaxGoldenRequestBytes = 64 << 10
	// DefaultAnswerPath is where an OpenAI-style completion carries its text.
	DefaultAnswerPath = "choices.0.text"
)

// GoldenSet is a versioned set of requests and expected answers, kept in
// the GitOps repo and read by goldenSet gates.
type GoldenSet struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   GoldenSetMeta `json:"metadata"`
	Spec       GoldenSetSpec `json:"spec"`
	regexps    map[int]*regexp.Regexp
}

// GoldenSetMeta names and versions a golden set.
type GoldenSetMeta struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// GoldenSetSpec lists the cases.
type GoldenSetSpec struct {
	// AnswerPath is where each response carries its answer, as a dotted
	// JSON path with array indexes (choices.0.text by default;
	// choices.0.message.content for chat, predictions.0 for KServe v1).
	AnswerPath string       `json:"answerPath,omitempty"`
	Cases      []GoldenCase `json:"cases"`
}

// GoldenCase is one request and its expected answer.
type GoldenCase struct {
	Name string `json:"name"`
	// Request is the JSON body POSTed to each side.
	Request map[string]any `json:"request"`
	// AnswerPath overrides the set's.
	AnswerPath string       `json:"answerPath,omitempty"`
	Expect     GoldenExpect `json:"expect"`
}

// GoldenExpect is exactly one scorer: exact (after trimming white space),
// regex (an RE2 pattern the answer must match somewhere) or number (the
// first number in the answer, within tolerance).
type GoldenExpect struct {
	Exact     *string  `json:"exact,omitempty"`
	Regex     *string  `json:"regex,omitempty"`
	Number    *float64 `json:"number,omitempty"`
	Tolerance *float64 `json:"tolerance,omitempty"`
}

// ParseGoldenSet decodes a golden set strictly and validates it; every
// problem names its field path.
func ParseGoldenSet(data []byte) (*GoldenSet, error) {
	if len(data) > canary.MaxGoldenSetBytes {
		return nil, fmt.Errorf("golden set: %d bytes is over the %d-byte limit", len(data), canary.MaxGoldenSetBytes)
	}
	var gs GoldenSet
	if err := canary.DecodeStrict(data, &gs); err != nil {
		return nil, fmt.Errorf("golden set: %w", err)
	}
	if gs.Spec.AnswerPath == "" {
		gs.Spec.AnswerPath = DefaultAnswerPath
	}
	if err := gs.validate(); err != nil {
		return nil, fmt.Errorf("golden set %s: %w", gs.Metadata.Name, err)
	}
	return &gs, nil
}

func (gs *GoldenSet) validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if gs.APIVersion != canary.APIVersion {
		add("apiVersion", "must be %q, got %q", canary.APIVersion, gs.APIVersion)
	}
	if gs.Kind != KindGoldenSet {
		add("kind", "must be %q, got %q", KindGoldenSet, gs.Kind)
	}
	if gs.Metadata.Name == "" {
		add("metadata.name", "is required")
	}
	if gs.Metadata.Version == "" {
		add("metadata.version", "is required")
	}
	switch n := len(gs.Spec.Cases); {
	case n == 0:
		add("spec.cases", "needs at least one case")
	case n > MaxGoldenCases:
		add("spec.cases", "has %d cases; at most %d", n, MaxGoldenCases)
	}
	gs.regexps = map[int]*regexp.Regexp{}
	names := map[string]bool{}
	for i, c := range gs.Spec.Cases {
		f := fmt.Sprintf("spec.cases[%d]", i)
		if c.Name == "" || names[c.Name] {
			add(f+".name", "must be set and unique, got %q", c.Name)
		}
		names[c.Name] = true
		if b, err := json.Marshal(c.Request); err != nil || len(c.Request) == 0 || len(b) > MaxGoldenRequestBytes {
			add(f+".request", "must be a JSON object of at most %d bytes", MaxGoldenRequestBytes)
		}
		e := c.Expect
		set := 0
		for _, ok := range []bool{e.Exact != nil, e.Regex != nil, e.Number != nil} {
			if ok {
				set++
			}
		}
		if set != 1 {
			add(f+".expect", "needs exactly one of exact, regex or number")
		}
		if e.Tolerance != nil && (e.Number == nil || !(*e.Tolerance >= 0) || math.IsInf(*e.Tolerance, 0)) {
			add(f+".expect.tolerance", "needs a number and must be finite and not negative")
		}
		if e.Regex != nil {
			re, err := regexp.Compile(*e.Regex)
			if err != nil {
				add(f+".expect.regex", "%s", err.Error())
			}
			gs.regexps[i] = re
		}
	}
	return errors.Join(errs...)
}

// answerPath is the path of case i's answer.
func (gs *GoldenSet) answerPath(i int) string {
	if p := gs.Spec.Cases[i].AnswerPath; p != "" {
		return p
	}
	return gs.Spec.AnswerPath
}

// Score reports whether answer is right for case i.
func (gs *GoldenSet) Score(i int, answer string) bool {
	e := gs.Spec.Cases[i].Expect
	switch {
	case e.Exact != nil:
		return strings.TrimSpace(answer) == strings.TrimSpace(*e.Exact)
	case e.Regex != nil:
		re := gs.regexps[i]
		return re != nil && re.MatchString(answer)
	case e.Number != nil:
		m := firstNumber.FindString(answer)
		v, err := strconv.ParseFloat(m, 64)
		tol := 0.0
		if e.Tolerance != nil {
			tol = *e.Tolerance
		}
		return err == nil && math.Abs(v-*e.Number) <= tol
	}
	return false
}

var firstNumber = regexp.MustCompile(`[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?`)

// AnswerAt extracts the answer at a dotted path (keys, and indexes into
// arrays) from a JSON response: a string as is, anything else as JSON.
func AnswerAt(body []byte, path string) (string, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("response is not JSON: %w", err)
	}
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[k]
			if !ok {
				return "", fmt.Errorf("response has no %q at %s", k, path)
			}
			v = next
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return "", fmt.Errorf("response has no index %q at %s", k, path)
			}
			v = x[i]
		default:
			return "", fmt.Errorf("response has no %q at %s", k, path)
		}
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode answer: %w", err)
	}
	return string(b), nil
}

// GoldenScores are both sides' results over a golden set.
type GoldenScores struct {
	Cases int
	// Right counts right answers by side (signals.Stable, signals.Canary).
	Right [2]int
	// Wrong lists, by side, the cases answered wrongly, with why.
	Wrong [2][]string
}

// Score is the share of cases a side answered right.
func (s GoldenScores) Score(side int) float64 {
	if s.Cases == 0 {
		return 0
	}
	return float64(s.Right[side]) / float64(s.Cases)
}

// GoldenVerdict fails when the canary's score is below stable's by more
// than margin, and succeeds otherwise.
func GoldenVerdict(gs *GoldenSet, s GoldenScores, margin float64) canary.GateResult {
	st, ca := s.Score(0), s.Score(1)
	r := canary.GateResult{
		Value:     fmt.Sprintf("canary %.3f, stable %.3f", ca, st),
		Condition: fmt.Sprintf("canary ≥ stable − %g", margin),
		Verdict:   canary.VerdictSuccessful,
	}
	detail := fmt.Sprintf("golden set %s v%s: canary %d/%d, stable %d/%d right",
		gs.Metadata.Name, gs.Metadata.Version, s.Right[1], s.Cases, s.Right[0], s.Cases)
	if wrong := s.Wrong[1]; len(wrong) > 0 {
		detail += "; canary wrong on " + listSome(wrong, 5)
	}
	// A small tolerance keeps a score exactly at the margin from failing on
	// floating-point rounding.
	if ca < st-margin-1e-9 {
		r.Verdict = canary.VerdictFailed
		r.Reason = fmt.Sprintf("canary scores %.3f, below stable's %.3f by more than %g: %s", ca, st, margin, detail)
		return r
	}
	r.Reason = detail
	return r
}

// listSome joins the first n items and counts the rest.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
