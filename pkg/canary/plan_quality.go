package canary

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// GateGoldenSet is the gate type that sends a versioned set of requests
// with expected answers to the canary and to stable and compares scores.
const GateGoldenSet = "goldenSet"

// Defaults of guardrails and golden-set gates.
const (
	// DefaultPromoteMargin: a guardrail passes on evidence that the
	// canary's success rate is no more than 1% below stable's.
	DefaultPromoteMargin = 0.01
	// DefaultRollbackMargin: a guardrail fails on evidence that it is
	// more than 3% below.
	DefaultRollbackMargin = 0.03
	DefaultGoldenTimeout  = 30 * time.Second
	// MaxGoldenSetBytes bounds a golden-set file read from the repo.
	MaxGoldenSetBytes = 1 << 20
)

// Guardrail is a business or quality judge metric: a pair of counters
// where higher is better, success over total (conversions over requests,
// accepted suggestions over shown, labelled-correct over labelled). The
// judge tests the canary's success rate relative to stable's with the same
// anytime-valid machinery as its other metrics (docs/judge.md).
type Guardrail struct {
	// Name labels the guardrail in verdicts; a DNS label that is not a
	// judge metric's name.
	Name string `json:"name"`
	// Success and Total name counters: requests, or a key of the gate's
	// signals.metrics naming a counter of its own (e.g. conversions:
	// shop_conversions_total). Both sides are selected by the signals'
	// stable and canary matchers.
	Success string `json:"success"`
	Total   string `json:"total"`
	// PromoteMargin: the guardrail passes on evidence that the canary's
	// rate is at most this much below stable's, relatively (0.01 = 1%).
	PromoteMargin *float64 `json:"promoteMargin,omitempty"`
	// RollbackMargin: the guardrail fails on evidence that the canary's
	// rate is more than this much below stable's, relatively (0.03 = 3%).
	RollbackMargin *float64 `json:"rollbackMargin,omitempty"`
	// LabelDelay is how long after a request its feedback (a label, a
	// conversion) is counted. The guardrail then judges only requests whose
	// feedback is in, the same cohort on both sides; see docs/judge.md.
	// Zero (default) for immediate feedback.
	LabelDelay *Duration `json:"labelDelay,omitempty"`
	// TotalAtLabel says that total, like success, counts feedback as it
	// arrives (labelled-correct over labelled); otherwise total counts
	// requests as they are served (conversions over requests) and each is
	// paired with the successes counted LabelDelay later.
	TotalAtLabel bool `json:"totalAtLabel,omitempty"`
}

// GoldenSetGate sends every case of a golden set (a file in the GitOps repo)
// to the canary and to stable, scores both, and fails when the canary
// scores worse than stable by more than Margin.
type GoldenSetGate struct {
	// Path is the repo path of the GoldenSet file, read at the revision the
	// plan was read from.
	Path string `json:"path"`
	// Margin is how much lower (as a share of the cases, 0..1) the
	// canary's score may be than stable's. Default 0.
	Margin *float64 `json:"margin,omitempty"`
	// Stable and Canary say where each side is reached. To go through a
	// header route, give the canary the route's URL and the header its
	// match names (or HeaderRoute); give stable its own service (the
	// route's weighted rules may send requests to either side).
	Stable GoldenEndpoint `json:"stable"`
	Canary GoldenEndpoint `json:"canary"`
	// HeaderRoute names a setHeaderRoute step of the plan: the canary's
	// requests carry the headers of its first match (which must match
	// exactly), and the gate may run only at analysis steps where that
	// route is in force.
	HeaderRoute string `json:"headerRoute,omitempty"`
	// Timeout bounds each request. Default 30s.
	Timeout *Duration `json:"timeout,omitempty"`
}

// GoldenEndpoint is one side's URL and extra request headers.
type GoldenEndpoint struct {
	// URL is the http(s) URL cases are POSTed to, e.g.
	// http://qwen-canary.models:8080/v1/completions.
	URL string `json:"url"`
	// Headers are added to every request, e.g. a header route's match.
	Headers map[string]string `json:"headers,omitempty"`
}

func defaultGuardrails(gs []Guardrail) {
	for i := range gs {
		g := &gs[i]
		g.PromoteMargin = orFloat(g.PromoteMargin, DefaultPromoteMargin)
		g.RollbackMargin = orFloat(g.RollbackMargin, DefaultRollbackMargin)
		if g.LabelDelay == nil {
			g.LabelDelay = D(0)
		}
	}
}

func defaultGoldenSet(g *GoldenSetGate) {
	g.Margin = orFloat(g.Margin, 0)
	if g.Timeout == nil {
		g.Timeout = D(DefaultGoldenTimeout)
	}
}

// builtinCounters are the counters a guardrail may name without a
// signals.metrics entry.
var builtinCounters = map[string]bool{"requests": true, "errors": true}

// signalKeys are the signals.metrics keys that are not plain counters.
var signalKeys = map[string]bool{"latency": true, "ttft": true, "tpot": true, "predictions": true,
	"kvCache": true, "queueDepth": true}

func validateGuardrails(f string, gs []Guardrail, s *SignalsSpec, add addFunc) {
	names := map[string]bool{}
	for _, m := range presetOffers(signalsPreset(s)) {
		names[m] = true
	}
	for i, g := range gs {
		p := fmt.Sprintf("%s[%d]", f, i)
		switch {
		case !validName(g.Name):
			add(p+".name", "must be a DNS label, got %q", g.Name)
		case names[g.Name]:
			add(p+".name", "duplicate name %q (guardrails and judge metrics share names)", g.Name)
		}
		names[g.Name] = true
		for _, c := range []struct{ field, v string }{{"success", g.Success}, {"total", g.Total}} {
			switch {
			case c.v == "":
				add(p+"."+c.field, "is required: requests or a key of signals.metrics")
			case signalKeys[c.v]:
				add(p+"."+c.field, "%q is not a counter", c.v)
			case builtinCounters[c.v]:
			case s == nil || s.Metrics[c.v] == "":
				add(p+"."+c.field, "counter %q is not named in signals.metrics", c.v)
			}
		}
		if g.Success != "" && g.Success == g.Total {
			add(p+".success", "must differ from total %q", g.Total)
		}
		pm, rm := *g.PromoteMargin, *g.RollbackMargin
		if pm < 0 || pm >= 1 {
			add(p+".promoteMargin", "must be in [0, 1), got %g", pm)
		}
		if rm <= 0 || rm >= 1 {
			add(p+".rollbackMargin", "must be in (0, 1), got %g", rm)
		} else if rm <= pm {
			add(p+".rollbackMargin", "must be above promoteMargin %g, got %g", pm, rm)
		}
		if d := g.LabelDelay.Duration; d < 0 || d > 24*time.Hour {
			add(p+".labelDelay", "must be between 0 and 24h, got %s", d)
		}
	}
}

func signalsPreset(s *SignalsSpec) string {
	if s == nil {
		return ""
	}
	return s.Preset
}

func validateGoldenSetGate(f string, g GateSpec, add addFunc) {
	gs := g.GoldenSet
	if gs == nil || g.Threshold != nil || g.Judge != nil || g.Drift != nil || g.Gauge != nil {
		add(f, "a %s gate needs exactly its own %s block", GateGoldenSet, GateGoldenSet)
		return
	}
	f += ".goldenSet"
	if err := CheckRepoPath(gs.Path); err != nil {
		add(f+".path", "%s", err.Error())
	}
	if m := *gs.Margin; m < 0 || m >= 1 {
		add(f+".margin", "must be in [0, 1), got %g", m)
	}
	if d := gs.Timeout.Duration; d <= 0 || d > 10*time.Minute {
		add(f+".timeout", "must be between 0 and 10m, got %s", d)
	}
	for _, side := range []struct {
		name string
		e    GoldenEndpoint
	}{{"stable", gs.Stable}, {"canary", gs.Canary}} {
		p := f + "." + side.name
		if u, err := url.Parse(side.e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			add(p+".url", "must be an http(s) URL without credentials, got %q", side.e.URL)
		}
		for k, v := range side.e.Headers {
			if !headerName.MatchString(k) || strings.EqualFold(k, "Authorization") {
				add(p+".headers."+k, "must be an HTTP header name other than Authorization")
			} else if strings.ContainsAny(v, "\r\n") {
				add(p+".headers."+k, "must not contain a line break")
			}
		}
	}
	if gs.Stable.URL != "" && gs.Stable.URL == gs.Canary.URL && len(gs.Canary.Headers) == 0 {
		add(f+".canary", "reaches stable's URL with no header: set a header route's headers, or the canary's own URL")
	}
}
