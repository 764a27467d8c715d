package canary

import (
	"fmt"
	"slices"
	"strings"
)

// Header match types, spelled as Gateway API's HTTPHeaderMatch spells them.
// Gateway API supports no prefix match on headers.
const (
	HeaderMatchExact = "Exact"
	HeaderMatchRegex = "RegularExpression"
)

// Bounds of the bot-owned routes. Gateway API allows 16 rules per
// HTTPRoute, 64 matches per rule and 16 headers per match; each header
// route adds one rule per user-facing rule, so they are capped well below.
const (
	MaxHeaderRoutes  = 4
	MaxHeaderMatches = 8
	MaxMatchHeaders  = 16
)

// HeaderRoute is a setHeaderRoute step, and a header route in force: an
// HTTPRoute rule, owned by the bot, that sends the requests matching any of
// Match to the canary only, whatever the weights. A step with a name and no
// match removes the route of that name. Promote and revert remove every
// header route.
type HeaderRoute struct {
	// Name identifies the route across steps (a DNS label).
	Name string `json:"name"`
	// Match lists alternatives (any one matching is enough); each matches
	// when all of its headers do.
	Match []HeaderRouteMatch `json:"match,omitempty"`
}

// HeaderRouteMatch is one alternative of a header route: every header must
// match.
type HeaderRouteMatch struct {
	Headers []HeaderMatch `json:"headers"`
}

// HeaderMatch is Gateway API's HTTPHeaderMatch.
type HeaderMatch struct {
	// Type is Exact (the default) or RegularExpression. Regular expression
	// dialects are the gateway implementation's; canarybot checks that the
	// value is a valid RE2 expression.
	Type  string `json:"type,omitempty"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// MirrorRouteStep is a setMirrorRoute step: the user-facing rules mirror
// Percent of their requests to the canary with Gateway API's RequestMirror
// filter, and discard the canary's answers. Percent 0 removes the mirror.
// A mirror runs only while the canary's user-facing weight is 0 (see
// Validate), so users never get a canary answer while it holds. Promote and
// revert remove it.
type MirrorRouteStep struct {
	// Percent of requests mirrored, 0..100; required.
	Percent *int `json:"percent,omitempty"`
}

// Routes are the bot-owned routes in force: they follow from the plan's
// steps up to the current one (RoutesAt), and are recorded in the state so
// that the overlay is a function of the state alone.
type Routes struct {
	// Headers are the header routes in force, in the order first set.
	Headers []HeaderRoute `json:"headers,omitempty"`
	// MirrorPercent is the share of user-facing requests mirrored to the
	// canary; 0 when no mirror is in force.
	MirrorPercent int `json:"mirrorPercent,omitempty"`
}

// IsZero reports whether no bot-owned route is in force.
func (r Routes) IsZero() bool { return len(r.Headers) == 0 && r.MirrorPercent == 0 }

// RoutesAt is the bot-owned routes in force at step i: every setHeaderRoute
// and setMirrorRoute step at or before it, applied in order.
func RoutesAt(steps []Step, i int) Routes {
	var r Routes
	for j := 0; j <= i && j < len(steps); j++ {
		switch st := steps[j]; {
		case st.SetHeaderRoute != nil:
			r.Headers = withHeaderRoute(r.Headers, *st.SetHeaderRoute)
		case st.SetMirrorRoute != nil:
			r.MirrorPercent = 0
			if p := st.SetMirrorRoute.Percent; p != nil {
				r.MirrorPercent = *p
			}
		}
	}
	return r
}

// withHeaderRoute returns routes with h set in place (or appended), or
// removed when h has no match. It never modifies routes.
func withHeaderRoute(routes []HeaderRoute, h HeaderRoute) []HeaderRoute {
	out := slices.Clone(routes)
	i := slices.IndexFunc(out, func(x HeaderRoute) bool { return x.Name == h.Name })
	switch {
	case len(h.Match) == 0 && i >= 0:
		return slices.Delete(out, i, i+1)
	case len(h.Match) == 0:
		return out
	case i >= 0:
		out[i] = h
		return out
	}
	return append(out, h)
}

// routesOf is the state's record of r: nil when no route is in force.
func routesOf(r Routes) *Routes {
	if r.IsZero() {
		return nil
	}
	if len(r.Headers) == 0 {
		r.Headers = nil // as the state file reads back
	}
	return &r
}

// defaultRoutes fills in each header match's type.
func (p *CanaryPlan) defaultRoutes() {
	for i := range p.Spec.Steps {
		h := p.Spec.Steps[i].SetHeaderRoute
		if h == nil {
			continue
		}
		for j := range h.Match {
			for k := range h.Match[j].Headers {
				if m := &h.Match[j].Headers[k]; m.Type == "" {
					m.Type = HeaderMatchExact
				}
			}
		}
	}
}

// DescribeRoute says what a route step does, for status pages and pull
// requests; "" for any other step.
func (s Step) DescribeRoute() string {
	switch {
	case s.SetHeaderRoute != nil && len(s.SetHeaderRoute.Match) == 0:
		return fmt.Sprintf("remove header route %s", s.SetHeaderRoute.Name)
	case s.SetHeaderRoute != nil:
		var alts []string
		for _, m := range s.SetHeaderRoute.Match {
			var hs []string
			for _, h := range m.Headers {
				op := "="
				if h.Type == HeaderMatchRegex {
					op = "~"
				}
				hs = append(hs, h.Name+op+h.Value)
			}
			alts = append(alts, strings.Join(hs, " and "))
		}
		return fmt.Sprintf("header route %s: %s to the canary", s.SetHeaderRoute.Name, strings.Join(alts, " or "))
	case s.SetMirrorRoute != nil && s.SetMirrorRoute.Percent != nil && *s.SetMirrorRoute.Percent > 0:
		return fmt.Sprintf("mirror %d%% of requests to the canary", *s.SetMirrorRoute.Percent)
	case s.SetMirrorRoute != nil:
		return "remove the mirror route"
	}
	return ""
}
