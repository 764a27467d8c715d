package canary

import (
	"fmt"
	"regexp"
	"strings"
)

// headerName is Gateway API's pattern for an HTTP header name.
var headerName = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+\\-.^_`|~]+$")

// Gateway API's bounds on a header match.
const (
	maxHeaderNameLen  = 256
	maxHeaderValueLen = 1024
)

// validateRoutes checks the setHeaderRoute and setMirrorRoute steps: both
// need traffic mode gateway; a header route is removed only after it was
// set; a mirror runs only while the user-facing weight is 0, and no
// setWeight step raises the weight while a mirror is in force.
func validateRoutes(s *PlanSpec, add addFunc) {
	gateway := s.Traffic.Mode == ModeGateway
	weight, weightAt, mirror, mirrorAt := 0, -1, 0, -1
	active := map[string]bool{}
	for i, st := range s.Steps {
		f := fmt.Sprintf("spec.steps[%d]", i)
		if w := st.SetWeight; w != nil {
			if *w > 0 && mirror > 0 {
				add(f+".setWeight", "must stay 0 while the mirror route set at spec.steps[%d] is in force: "+
					"a mirror step never raises user-facing weight; remove it first with setMirrorRoute: {percent: 0}", mirrorAt)
			}
			weight, weightAt = *w, i
		}
		if h := st.SetHeaderRoute; h != nil {
			f := f + ".setHeaderRoute"
			if !gateway {
				add(f, "needs traffic.mode %s, got %q", ModeGateway, s.Traffic.Mode)
			}
			validateHeaderRoute(f, h, add)
			switch {
			case len(h.Match) > 0:
				active[h.Name] = true
			case !active[h.Name]:
				add(f+".match", "is required: no earlier step set a header route named %q to remove", h.Name)
			default:
				delete(active, h.Name)
			}
			if len(active) > MaxHeaderRoutes {
				add(f, "at most %d header routes may be in force at once, got %d", MaxHeaderRoutes, len(active))
			}
		}
		if m := st.SetMirrorRoute; m != nil {
			f := f + ".setMirrorRoute"
			if !gateway {
				add(f, "needs traffic.mode %s, got %q", ModeGateway, s.Traffic.Mode)
			}
			switch {
			case m.Percent == nil:
				add(f+".percent", "is required: 1 to 100 mirrors that share of requests to the canary, 0 removes the mirror")
			case *m.Percent < 0 || *m.Percent > 100:
				add(f+".percent", "must be between 0 and 100, got %d", *m.Percent)
			case *m.Percent > 0 && weight > 0:
				add(f, "a mirror runs only while the canary's user-facing weight is 0, but spec.steps[%d] set it to %d", weightAt, weight)
			}
			if m.Percent != nil {
				mirror, mirrorAt = *m.Percent, i
			}
		}
	}
}

func validateHeaderRoute(f string, h *HeaderRoute, add addFunc) {
	if !validName(h.Name) {
		add(f+".name", "must be a DNS label, got %q", h.Name)
	}
	if len(h.Match) > MaxHeaderMatches {
		add(f+".match", "at most %d matches, got %d", MaxHeaderMatches, len(h.Match))
	}
	for j, m := range h.Match {
		mf := fmt.Sprintf("%s.match[%d].headers", f, j)
		switch n := len(m.Headers); {
		case n == 0:
			add(mf, "at least one header is required")
		case n > MaxMatchHeaders:
			add(mf, "at most %d headers, got %d", MaxMatchHeaders, n)
		}
		seen := map[string]int{}
		for k, hm := range m.Headers {
			validateHeaderMatch(fmt.Sprintf("%s[%d]", mf, k), hm, add)
			key := strings.ToLower(hm.Name)
			if prev, dup := seen[key]; dup {
				add(fmt.Sprintf("%s[%d].name", mf, k), "header %q is already matched at [%d] (header names are case-insensitive)", hm.Name, prev)
			}
			seen[key] = k
		}
	}
}

func validateHeaderMatch(f string, m HeaderMatch, add addFunc) {
	if len(m.Name) > maxHeaderNameLen || !headerName.MatchString(m.Name) {
		add(f+".name", "must be an HTTP header name of at most %d characters, got %q", maxHeaderNameLen, m.Name)
	}
	if m.Value == "" || len(m.Value) > maxHeaderValueLen {
		add(f+".value", "must be 1 to %d characters, got %d", maxHeaderValueLen, len(m.Value))
	}
	switch m.Type {
	case HeaderMatchExact:
	case HeaderMatchRegex:
		if _, err := regexp.Compile(m.Value); err != nil {
			add(f+".value", "is not a valid regular expression: %s", err.Error())
		}
	default:
		add(f+".type", "must be %q or %q (Gateway API has no prefix match on headers), got %q",
			HeaderMatchExact, HeaderMatchRegex, m.Type)
	}
}
