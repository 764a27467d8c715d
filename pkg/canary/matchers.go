package canary

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Label matcher values in spec.signals (stable, canary and gpu's): a value
// is matched literally, unless it starts with "~", when the rest is a
// regular expression (RE2, Prometheus's syntax) that must match the whole
// label value.

// RegexPrefix marks a matcher value as a regular expression.
const RegexPrefix = "~"

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// MatcherRegex returns the anchored regular expression of a "~re" matcher
// value; ok is false for a literal value.
func MatcherRegex(v string) (re *regexp.Regexp, ok bool, err error) {
	pat, ok := strings.CutPrefix(v, RegexPrefix)
	if !ok {
		return nil, false, nil
	}
	re, err = regexp.Compile("^(?:" + pat + ")$")
	if err != nil {
		return nil, true, fmt.Errorf("bad regular expression %q: %w", pat, err)
	}
	return re, true, nil
}

// PromMatcher renders one matcher as PromQL: name="v", or name=~"re".
func PromMatcher(name, v string) string {
	if pat, ok := strings.CutPrefix(v, RegexPrefix); ok {
		return name + "=~" + strconv.Quote(pat)
	}
	return name + "=" + strconv.Quote(v)
}

// Matcher matches label values; build it with CompileMatchers.
type Matcher struct {
	name  string
	exact string
	re    *regexp.Regexp
}

// Name is the label the matcher reads.
func (m Matcher) Name() string { return m.name }

// Matches reports whether value matches.
func (m Matcher) Matches(value string) bool {
	if m.re != nil {
		return m.re.MatchString(value)
	}
	return value == m.exact
}

// CompileMatchers compiles a matcher map; every bad name or expression is
// reported.
func CompileMatchers(sel map[string]string) ([]Matcher, error) {
	out := make([]Matcher, 0, len(sel))
	var errs []string
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		if !labelNameRE.MatchString(k) {
			errs = append(errs, fmt.Sprintf("%q is not a label name", k))
			continue
		}
		re, _, err := MatcherRegex(sel[k])
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", k, err))
			continue
		}
		out = append(out, Matcher{name: k, exact: sel[k], re: re})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("label matchers: %s", strings.Join(errs, "; "))
	}
	return out, nil
}
