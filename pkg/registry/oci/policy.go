package oci

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/canarybot/canarybot/pkg/canary"
)

// DefaultCreatedAnnotation is where policy latest reads a manifest's
// creation time unless the plan names another annotation.
const DefaultCreatedAnnotation = "org.opencontainers.image.created"

// MaxTimeLookups bounds how many tags policy latest inspects in one look;
// narrow a larger repository with tagRegex.
const MaxTimeLookups = 100

// selector is a plan's tag policy, parsed. Its methods are pure.
type selector struct {
	policy     string
	constraint *semver.Constraints
	filter     *regexp.Regexp
	annotation string
}

// newSelector parses the plan's OCI tag policy. Errors are the plan's.
func newSelector(src *canary.OCISource) (selector, error) {
	s := selector{policy: src.Policy, annotation: src.CreatedAnnotation}
	if s.policy == "" {
		s.policy = canary.OCIPolicySemver
	}
	if s.annotation == "" {
		s.annotation = DefaultCreatedAnnotation
	}
	if src.TagRegex != "" {
		re, err := regexp.Compile(src.TagRegex)
		if err != nil {
			return selector{}, fmt.Errorf("tagRegex %q: %w", src.TagRegex, err)
		}
		s.filter = re
	}
	switch s.policy {
	case canary.OCIPolicySemver:
		c, err := parseConstraint(src.Semver)
		if err != nil {
			return selector{}, err
		}
		s.constraint = c
	case canary.OCIPolicyRegex:
		if s.filter == nil {
			return selector{}, fmt.Errorf("policy %q needs tagRegex", s.policy)
		}
	case canary.OCIPolicyLatest:
	default:
		return selector{}, fmt.Errorf("unknown tag policy %q", s.policy)
	}
	return s, nil
}

// parseConstraint parses a plan's semver constraint; empty means any
// version.
func parseConstraint(expr string) (*semver.Constraints, error) {
	if expr == "" {
		return semver.NewConstraint("*")
	}
	c, err := semver.NewConstraint(expr)
	if err != nil {
		return nil, fmt.Errorf("semver constraint %q: %w", expr, err)
	}
	return c, nil
}

// ValidatePlan returns what of the plan's OCI source the watcher would
// refuse at run time and canary.CanaryPlan.Validate cannot check without
// this package's semver library: the semver constraint. The error carries
// the field path; a plan without an OCI source has nothing to check.
func ValidatePlan(plan *canary.CanaryPlan) error {
	src := plan.Spec.Model.Source.OCI
	if src == nil || src.Semver == "" {
		return nil
	}
	if _, err := parseConstraint(src.Semver); err != nil {
		return fmt.Errorf("spec.model.source.oci.semver: invalid %w", err)
	}
	return nil
}

// candidates returns the tags the filter keeps, sorted byte-wise.
func (s selector) candidates(tags []string) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if s.filter == nil || s.filter.MatchString(t) {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// highestSemver returns the tag with the highest version satisfying c, or
// "", and how many tags were not semantic versions. sorted must be in
// byte order, so that of two equal versions ("1.0.0", "v1.0.0") the first
// wins.
func highestSemver(sorted []string, c *semver.Constraints) (best string, skipped int) {
	var bestV *semver.Version
	for _, t := range sorted {
		v, err := semver.NewVersion(t)
		if err != nil {
			skipped++
			continue
		}
		if !c.Check(v) {
			continue
		}
		if bestV == nil || v.GreaterThan(bestV) {
			best, bestV = t, v
		}
	}
	return best, skipped
}

// highestByRegex returns the matching tag whose key is highest: re's first
// capture group, or the whole tag when re has none. Two keys that are both
// decimal compare as numbers ("build-10" beats "build-9"); otherwise
// byte-wise. Ties go to the tag first in byte order.
func highestByRegex(sorted []string, re *regexp.Regexp) string {
	best, bestKey := "", ""
	for _, t := range sorted {
		m := re.FindStringSubmatch(t)
		if m == nil {
			continue
		}
		key := t
		if len(m) > 1 {
			key = m[1]
		}
		if best == "" || keyLess(bestKey, key) {
			best, bestKey = t, key
		}
	}
	return best
}

// keyLess orders regex keys: numerically when both are decimal numbers,
// else byte-wise.
func keyLess(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil {
		return x < y
	}
	return a < b
}

// stamped is a tag with the creation time found for it, pinned by the
// digest the time was read from.
type stamped struct {
	tag     string
	digest  string
	created time.Time
}

// newest returns the most recently created tag, or false when none has a
// time. Ties go to the tag last in byte order.
func newest(ts []stamped) (stamped, bool) {
	var best stamped
	found := false
	for _, s := range ts {
		if s.created.IsZero() {
			continue
		}
		if !found || s.created.After(best.created) || s.created.Equal(best.created) && s.tag > best.tag {
			best, found = s, true
		}
	}
	return best, found
}
