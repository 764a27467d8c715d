package statuspage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// view is what the page templates read.
type view struct {
	Title       string
	Refresh     int
	Multi       bool
	GeneratedAt time.Time
	Fleet       *Fleet
	Rollout     *Rollout
	Charts      []chartView
	Status      int
	Error       string
}

// isAPI reports whether r asks for the JSON API.
func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

func (p *Page) serveFleet(w http.ResponseWriter, r *http.Request) {
	f := p.fleet(r.Context())
	if isAPI(r) {
		writeJSON(w, http.StatusOK, f)
		return
	}
	p.render(w, "fleet", view{Title: "canarybot rollouts", Fleet: f, GeneratedAt: f.GeneratedAt, Multi: len(f.Repos) > 1})
}

func (p *Page) serveRollout(w http.ResponseWriter, r *http.Request) {
	plan, repo := r.PathValue("plan"), r.URL.Query().Get("repo")
	ro, err := p.rollout(r.Context(), repo, plan)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if isAPI(r) {
		writeJSON(w, http.StatusOK, ro)
		return
	}
	v := view{Title: plan + " · canarybot", Rollout: ro, GeneratedAt: ro.GeneratedAt, Multi: len(p.cfg.Repos()) > 1}
	for _, c := range ro.Judges {
		v.Charts = append(v.Charts, layoutChart(c, plan, ro.RolloutStartedAt))
	}
	p.render(w, "rollout", v)
}

// serveJudgeSVG serves one judge gate's chart as a standalone SVG, for
// pull request comments to embed: ?gate=NAME, or the plan's first judge.
func (p *Page) serveJudgeSVG(w http.ResponseWriter, r *http.Request) {
	plan := r.PathValue("plan")
	ro, err := p.rollout(r.Context(), r.URL.Query().Get("repo"), plan)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	gate := r.URL.Query().Get("gate")
	for _, c := range ro.Judges {
		if gate != "" && c.Gate != gate {
			continue
		}
		var b bytes.Buffer
		if err := p.svg.ExecuteTemplate(&b, "judge-svg", layoutChart(c, plan, ro.RolloutStartedAt)); err != nil {
			p.fail(w, r, fmt.Errorf("render chart: %w", err))
			return
		}
		w.Header().Set("Content-Type", "image/svg+xml; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = b.WriteTo(w)
		return
	}
	p.fail(w, r, fmt.Errorf("%w: plan %s has no judge gate %q", ErrNotFound, plan, gate))
}

// fail answers a read error in the form asked for.
func (p *Page) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := status(err), clean(err.Error())
	if code >= 500 {
		p.cfg.Log.Warn("status page", "path", r.URL.Path, "err", msg)
	}
	if isAPI(r) || strings.HasSuffix(r.URL.Path, ".svg") {
		writeJSON(w, code, map[string]string{"error": msg})
		return
	}
	setPageHeaders(w)
	w.WriteHeader(code)
	p.renderTo(w, "error", view{Title: http.StatusText(code) + " · canarybot", Status: code, Error: msg,
		GeneratedAt: p.cfg.Clock.Now()})
}

// render writes page name with v, or a plain error when it fails.
func (p *Page) render(w http.ResponseWriter, name string, v view) {
	var b bytes.Buffer
	v.Refresh = int(p.cfg.Refresh / time.Second)
	if err := p.pages[name].ExecuteTemplate(&b, "layout", v); err != nil {
		p.cfg.Log.Error("status page: render", "page", name, "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w)
	_, _ = b.WriteTo(w)
}

// renderTo writes page name after the status line has been sent.
func (p *Page) renderTo(w http.ResponseWriter, name string, v view) {
	v.Refresh = -1
	if err := p.pages[name].ExecuteTemplate(w, "layout", v); err != nil {
		p.cfg.Log.Error("status page: render", "page", name, "err", err)
	}
}

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "+
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error": "encode failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"verdictClass": VerdictClass,
	"phaseClass":   PhaseClass,
	"rolloutURL": func(multi bool, repo, plan string) string {
		u := "/rollouts/" + url.PathEscape(plan)
		if multi {
			u += "?repo=" + url.QueryEscape(repo)
		}
		return u
	},
	"svgURL": func(multi bool, repo, plan, gate string) string {
		q := url.Values{"gate": {gate}}
		if multi {
			q.Set("repo", repo)
		}
		return "/rollouts/" + url.PathEscape(plan) + "/judge.svg?" + q.Encode()
	},
	"utc":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"verdict": verdictText,
	"last":    func(n int) int { return n - 1 },
	"join":    strings.Join,
}

// verdictText is a verdict with a symbol, so that it never reads by colour
// alone.
func verdictText(v string) string {
	switch canary.Verdict(v) {
	case canary.VerdictSuccessful:
		return "✓ " + v
	case canary.VerdictFailed:
		return "✗ " + v
	case canary.VerdictError:
		return "! " + v
	case canary.VerdictInconclusive:
		return "? " + v
	}
	return "… " + v
}
