package rolloutsimport

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/canarybot/canarybot/pkg/canary"
)

// mirrorState is the Argo mirror route in force while converting steps.
type mirrorState struct {
	name  string // the Argo route's name; "" when none is in force
	since string // the path of the step that set it
}

// stringMatch is Argo Rollouts' StringMatch: exactly one of its fields.
type stringMatch struct {
	Exact  *string `json:"exact"`
	Prefix *string `json:"prefix"`
	Regex  *string `json:"regex"`
}

// headerRoute converts setHeaderRoute: Argo's match list (every header
// must match) becomes one canarybot match whose headers all must match;
// no match removes the route. Gateway API has no prefix match on headers:
// a prefix becomes the regular expression ^<prefix, quoted>.
func (c *converter) headerRoute(f string, v json.RawMessage) (*canary.Step, error) {
	var hr struct {
		Name  string `json:"name"`
		Match []struct {
			HeaderName  string       `json:"headerName"`
			HeaderValue *stringMatch `json:"headerValue"`
		} `json:"match"`
	}
	if err := json.Unmarshal(v, &hr); err != nil {
		return nil, fmt.Errorf("%s: %w", c.rpath(f), err)
	}
	if c.mode != canary.ModeGateway {
		c.drop(c.rpath(f), "header routes need traffic mode %s, got %s", canary.ModeGateway, c.mode)
		return nil, nil
	}
	route := canary.HeaderRoute{Name: hr.Name}
	var m canary.HeaderRouteMatch
	for i, hm := range hr.Match {
		mf := fmt.Sprintf("%s.match[%d].headerValue", f, i)
		h := canary.HeaderMatch{Name: hm.HeaderName, Type: canary.HeaderMatchExact}
		switch sm := hm.HeaderValue; {
		case sm == nil:
			return nil, fmt.Errorf("%s: is required", c.rpath(mf))
		case sm.Exact != nil:
			h.Value = *sm.Exact
		case sm.Regex != nil:
			h.Type, h.Value = canary.HeaderMatchRegex, *sm.Regex
		case sm.Prefix != nil:
			h.Type, h.Value = canary.HeaderMatchRegex, "^"+regexp.QuoteMeta(*sm.Prefix)
			c.note(c.rpath(mf+".prefix"), "Gateway API has no prefix match on headers: written as the regular expression %q", h.Value)
		default:
			return nil, fmt.Errorf("%s: needs exact, prefix or regex", c.rpath(mf))
		}
		m.Headers = append(m.Headers, h)
	}
	if len(m.Headers) > 0 {
		route.Match = []canary.HeaderRouteMatch{m}
	}
	return &canary.Step{SetHeaderRoute: &route}, nil
}

// mirrorRoute converts setMirrorRoute. canarybot mirrors every request of
// the route's user-facing rules, to the canary, only while the canary's
// weight is 0, and one mirror at a time: a narrower match, a mirror at a
// weight above 0 and a second mirror are not carried over. No match
// removes the mirror.
func (c *converter) mirrorRoute(f string, v json.RawMessage, weight int) (*canary.Step, error) {
	var mr struct {
		Name       string            `json:"name"`
		Percentage *int              `json:"percentage"`
		Match      []json.RawMessage `json:"match"`
	}
	if err := json.Unmarshal(v, &mr); err != nil {
		return nil, fmt.Errorf("%s: %w", c.rpath(f), err)
	}
	switch {
	case c.mode != canary.ModeGateway:
		c.drop(c.rpath(f), "mirror routes need traffic mode %s, got %s", canary.ModeGateway, c.mode)
		return nil, nil
	case len(mr.Match) == 0:
		if c.mirror.name == "" || c.mirror.name != mr.Name {
			c.note(c.rpath(f), "removes mirror route %q, which is not in force; left out", mr.Name)
			return nil, nil
		}
		c.mirror = mirrorState{}
		return &canary.Step{SetMirrorRoute: &canary.MirrorRouteStep{Percent: intp(0)}}, nil
	case weight > 0:
		c.drop(c.rpath(f), "canarybot mirrors only while the canary's weight is 0 (users never get its answers); the weight here is %d", weight)
		return nil, nil
	case c.mirror.name != "" && c.mirror.name != mr.Name:
		c.drop(c.rpath(f), "canarybot runs one mirror at a time; %q is in force since %s", c.mirror.name, c.mirror.since)
		return nil, nil
	}
	if !everyPath(mr.Match) {
		c.drop(c.rpath(f+".match"), "canarybot mirrors every request of the HTTPRoute's user-facing rules; this narrower match is not carried over")
	}
	pct := 100
	if mr.Percentage != nil {
		pct = *mr.Percentage
	}
	c.mirror = mirrorState{name: mr.Name, since: c.rpath(f)}
	return &canary.Step{SetMirrorRoute: &canary.MirrorRouteStep{Percent: &pct}}, nil
}

// everyPath reports whether Argo's route matches select every request:
// each is only a path prefix "/".
func everyPath(matches []json.RawMessage) bool {
	for _, raw := range matches {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil || len(m) != 1 {
			return false
		}
		var p struct {
			Path *stringMatch `json:"path"`
		}
		if json.Unmarshal(raw, &p) != nil || p.Path == nil || p.Path.Prefix == nil || *p.Path.Prefix != "/" ||
			p.Path.Exact != nil || p.Path.Regex != nil {
			return false
		}
	}
	return true
}

// endMirrorBefore ends the mirror in force before a step that raises the
// weight, as canarybot requires (a mirror never runs beside user-facing
// canary traffic); Argo's mirror would have gone on, so the rest of it is
// listed as not carried over.
func (c *converter) endMirrorBefore(out []canary.Step, f string, next canary.Step) []canary.Step {
	if c.mirror.name == "" || next.SetWeight == nil || *next.SetWeight == 0 {
		return out
	}
	c.drop(c.rpath(f), "canarybot ends mirror route %q (set at %s) before the weight rises: setMirrorRoute {percent: 0} inserted before this step",
		c.mirror.name, c.mirror.since)
	c.mirror = mirrorState{}
	return append(out, canary.Step{SetMirrorRoute: &canary.MirrorRouteStep{Percent: intp(0)}})
}

func intp(i int) *int { return &i }
