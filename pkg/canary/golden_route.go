package canary

import (
	"fmt"
	"slices"
)

// goldenRouteMatch is the first match of the first setHeaderRoute step
// named name that sets one, or nil.
func goldenRouteMatch(steps []Step, name string) *HeaderRouteMatch {
	for _, st := range steps {
		if h := st.SetHeaderRoute; h != nil && h.Name == name && len(h.Match) > 0 {
			return &h.Match[0]
		}
	}
	return nil
}

// allExact reports whether every header of m is matched exactly, so that
// a request can carry it as it is.
func allExact(m *HeaderRouteMatch) bool {
	return m != nil && !slices.ContainsFunc(m.Headers, func(h HeaderMatch) bool {
		return h.Type != "" && h.Type != HeaderMatchExact
	})
}

// defaultGoldenRoutes adds to the canary's requests of each goldenSet gate
// that names a header route the headers of that route's first match; a
// header the gate sets itself is kept.
func (p *CanaryPlan) defaultGoldenRoutes() {
	for i := range p.Spec.Gates {
		gs := p.Spec.Gates[i].GoldenSet
		if gs == nil || gs.HeaderRoute == "" {
			continue
		}
		m := goldenRouteMatch(p.Spec.Steps, gs.HeaderRoute)
		if !allExact(m) {
			continue // validation says why
		}
		if gs.Canary.Headers == nil {
			gs.Canary.Headers = map[string]string{}
		}
		for _, h := range m.Headers {
			if _, set := gs.Canary.Headers[h.Name]; !set {
				gs.Canary.Headers[h.Name] = h.Value
			}
		}
	}
}

// validateGoldenRoutes checks each goldenSet gate that sends its canary
// requests through a header route: the route exists with an exact match,
// and every analysis step that runs the gate has that route, with that
// match, in force. Background analysis runs at every step, so it cannot
// run such a gate.
func validateGoldenRoutes(s *PlanSpec, add addFunc) {
	for i, g := range s.Gates {
		if g.GoldenSet == nil || g.GoldenSet.HeaderRoute == "" {
			continue
		}
		name, route := g.Name, g.GoldenSet.HeaderRoute
		f := fmt.Sprintf("spec.gates[%d].goldenSet.headerRoute", i)
		m := goldenRouteMatch(s.Steps, route)
		switch {
		case m == nil:
			add(f, "no setHeaderRoute step sets a header route named %q", route)
			continue
		case !allExact(m):
			add(f, "header route %q's first match must match every header exactly (type Exact), for the golden set's requests to carry it", route)
			continue
		}
		for j, st := range s.Steps {
			if st.Analysis == nil || !slices.Contains(st.Analysis.Gates, name) {
				continue
			}
			in := RoutesAt(s.Steps, j).Headers
			k := slices.IndexFunc(in, func(h HeaderRoute) bool { return h.Name == route })
			switch {
			case k < 0:
				add(fmt.Sprintf("spec.steps[%d].analysis", j), "gate %s sends its golden set through header route %q, which is not in force at this step", name, route)
			case !slices.EqualFunc(in[k].Match[0].Headers, m.Headers, func(a, b HeaderMatch) bool { return a == b }):
				add(fmt.Sprintf("spec.steps[%d].analysis", j), "gate %s: header route %q has another first match here than where it was first set", name, route)
			}
		}
		if b := s.BackgroundAnalysis; b != nil && slices.Contains(b.Gates, name) {
			add("spec.backgroundAnalysis.gates", "gate %s sends its golden set through header route %q, which is not in force at every step", name, route)
		}
	}
}
