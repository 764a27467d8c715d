package statuspage

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

// newTestPage serves w's repository as acme/gitops on GitHub, at the
// world's clock, with more repositories when given.
func newTestPage(t *testing.T, w *world, more ...Repo) *Page {
	t.Helper()
	if _, err := w.repo.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Clock: w.clock, Repos: func() []Repo {
		return append([]Repo{{Name: "acme/gitops", Git: w.repo, Web: "https://github.com/acme/gitops"}}, more...)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stateOf reads plan's state at the head of the world's repository.
func (w *world) stateOf(t *testing.T, plan string) *canary.RolloutState {
	t.Helper()
	st, err := w.repo.ReadState(t.Context(), "", plan)
	if err != nil || st == nil {
		t.Fatalf("state of %s: %v", plan, err)
	}
	return st
}

// fetch GETs path from srv and returns the status, content type and body.
func fetch(t *testing.T, srv *httptest.Server, path string) (int, string, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func fetchJSON(t *testing.T, srv *httptest.Server, path string, into any) {
	t.Helper()
	code, ct, body := fetch(t, srv, path)
	if code != http.StatusOK || ct != "application/json" {
		t.Fatalf("GET %s: %d %s\n%s", path, code, ct, body)
	}
	if err := json.Unmarshal([]byte(body), into); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

// The page and the API rebuild every rollout from Git: the fleet, the
// timelines of real transitions, the judge's estimates per step, and the
// chart as a standalone SVG.
func TestStatusPageFromGit(t *testing.T) {
	w := newWorld(t)
	srv := httptest.NewServer(newTestPage(t, w, Repo{Name: "acme/mirror", Git: w.repo}).Handler())
	t.Cleanup(srv.Close)

	var f Fleet
	fetchJSON(t, srv, "/api/v1/rollouts", &f)
	if len(f.Repos) != 2 || f.Repos[0].Repo != "acme/gitops" || len(f.Repos[0].Rollouts) != 3 || len(f.Repos[0].Invalid) != 1 {
		t.Fatalf("fleet: %+v", f)
	}
	phases := map[string]string{}
	for _, r := range f.Repos[0].Rollouts {
		phases[r.Plan] = r.Phase
	}
	if phases[planPromoted] != canary.PhasePromoted || phases[planReverted] != canary.PhaseReverted || phases[planProgressing] != canary.PhaseProgressing {
		t.Errorf("phases: %v", phases)
	}
	churn := f.Repos[0].Rollouts[0]
	if churn.Plan != planProgressing || churn.Weight != 50 || churn.Canary.Digest != "sha256:222222222222" || churn.InStep != "30s" ||
		churn.StepName != "set canary weight 50%" {
		t.Errorf("the progressing rollout: %+v", churn)
	}
	if bad := f.Repos[0].Invalid[0]; bad.Where != ".canarybot/plans/broken.yaml" || !strings.Contains(bad.Error, "setWeight: must be between 0 and 100") {
		t.Errorf("invalid plan: %+v", bad)
	}

	// The plan is in two repositories: the page asks which.
	if code, _, body := fetch(t, srv, "/api/v1/rollouts/"+planReverted); code != http.StatusBadRequest || !strings.Contains(body, "?repo=") {
		t.Errorf("ambiguous plan: %d %s", code, body)
	}
	var ro Rollout
	fetchJSON(t, srv, "/api/v1/rollouts/"+planReverted+"?repo=acme/gitops", &ro)
	checkReverted(t, ro, w.stateOf(t, planReverted))
	var promoted Rollout
	fetchJSON(t, srv, "/api/v1/rollouts/"+planPromoted+"?repo=acme/gitops", &promoted)
	if pts := judgePoints(promoted); len(pts) != 2 || pts[1].Worse || pts[1].High >= pts[0].High || pts[1].Step != 3 {
		t.Errorf("the promoted rollout's judge, step by step: %+v", pts)
	}
	if n := len(promoted.Transitions); n != 5 || promoted.Transitions[n-1].Action != "promote" || promoted.Transitions[n-1].Weight != 100 {
		t.Errorf("the promoted rollout's timeline: %+v", promoted.Transitions)
	}

	code, ct, svg := fetch(t, srv, "/rollouts/"+planReverted+"/judge.svg?repo=acme/gitops&gate=judge")
	if code != http.StatusOK || ct != "image/svg+xml; charset=utf-8" {
		t.Fatalf("judge.svg: %d %s\n%s", code, ct, svg)
	}
	checkSVG(t, svg)
	for path, want := range map[string]int{
		"/rollouts/" + planReverted + "/judge.svg?repo=acme/gitops&gate=nope": http.StatusNotFound,
		"/api/v1/rollouts/nope":                           http.StatusNotFound,
		"/rollouts/" + planReverted + "?repo=acme/absent": http.StatusNotFound,
		"/static/style.css":                               http.StatusOK,
		"/static/refresh.js":                              http.StatusOK,
		"/nope":                                           http.StatusNotFound,
	} {
		if code, _, body := fetch(t, srv, path); code != want {
			t.Errorf("GET %s: %d, want %d\n%s", path, code, want, body)
		}
	}
	t.Run("markup", func(t *testing.T) { checkMarkup(t, srv) })
	t.Run("head and credentials", func(t *testing.T) { checkFollowsHeadAndHidesCredentials(t, w, srv) })
}

// checkReverted checks the reverted rollout's timeline, gate and chart
// against the state the engine wrote.
func checkReverted(t *testing.T, ro Rollout, st *canary.RolloutState) {
	t.Helper()
	var actions []string
	for _, tr := range ro.Transitions {
		actions = append(actions, tr.Action)
		if !strings.HasPrefix(tr.URL, "https://github.com/acme/gitops/commit/") || tr.At.IsZero() {
			t.Errorf("transition %+v: want a GitHub link and a time", tr)
		}
	}
	if strings.Join(actions, ",") != "start,advance,revert" || ro.Reason != st.Status.Reason {
		t.Errorf("timeline %v, reason %q", actions, ro.Reason)
	}
	if len(ro.Gates) != 1 || ro.Gates[0].Verdict != "Failed" || ro.Gates[0].Type != canary.GateJudge ||
		!strings.Contains(ro.Gates[0].Observed, "(worse)") || ro.Gates[0].Window != st.Status.Gates[0].Window {
		t.Errorf("gates: %+v", ro.Gates)
	}
	// The point at the revert: the worse test crossed, and the estimate
	// sits inside its confidence sequence. The sequence is two-sided, from
	// another mixture and at the metric's share of α (smaller since the
	// burst detectors take theirs), so at the first crossing its lower
	// bound may still reach just below 1.
	pts := judgePoints(ro)
	if len(pts) != 1 || !pts[0].Worse || pts[0].Estimate <= 2 || pts[0].Step != 1 ||
		!(pts[0].Low < pts[0].Estimate && (pts[0].Unbounded || pts[0].Estimate < pts[0].High)) {
		t.Errorf("judge points: %+v", pts)
	}
	if len(ro.StepsPlan) != 4 || ro.StepsPlan[1].Status != "reverted here" {
		t.Errorf("steps: %+v", ro.StepsPlan)
	}
}

func judgePoints(ro Rollout) []JudgePoint {
	if len(ro.Judges) != 1 || len(ro.Judges[0].Metrics) != 1 || ro.Judges[0].Metrics[0].Metric != "errors" ||
		ro.Judges[0].Metrics[0].Margin != 2 {
		return nil
	}
	return ro.Judges[0].Metrics[0].Points
}

// checkSVG checks that svg is well-formed XML with an accessible svg root.
func checkSVG(t *testing.T, svg string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("judge.svg is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Space + " " + se.Name.Local
		}
	}
	if root != "http://www.w3.org/2000/svg svg" || !strings.Contains(svg, `role="img"`) || !strings.Contains(svg, "<title id=") {
		t.Errorf("judge.svg root %q, or no title and role:\n%s", root, svg)
	}
}

// checkFollowsHeadAndHidesCredentials checks that the page follows the
// branch head, and shows no credential that a state carries.
func checkFollowsHeadAndHidesCredentials(t *testing.T, w *world, srv *httptest.Server) {
	if code, _, body := fetch(t, srv, "/"); code != http.StatusOK || strings.Contains(body, "leaky") {
		t.Fatalf("GET /: %d", code)
	}

	st := canary.NewState("leaky", canary.Artifact{URI: "s3://models/leaky/1?X-Amz-Signature=SECRET", Version: "1"})
	st.Status.Phase, st.Status.Reason = canary.PhasePaused, "held: pull https://bot:SECRET@registry.example.com/v2/x failed"
	st.Status.Gates = []canary.GateResult{{Gate: "errors", Verdict: canary.VerdictError,
		Query: "https://prom.example.com/api?token=SECRET", Reason: "Get https://u:SECRET@prom.example.com: EOF"}}
	b, err := canary.MarshalState(st)
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "human")
	git(t, filepath.Dir(w.bare), "clone", "--quiet", w.bare, work)
	if err := os.WriteFile(filepath.Join(work, filepath.FromSlash(canary.StatePath("leaky"))), b, 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, "add", "-A")
	git(t, work, "commit", "--quiet", "-m", "a hand-written state")
	git(t, work, "push", "--quiet", "origin", "HEAD:main")
	if _, err := w.repo.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/api/v1/rollouts", "/rollouts/leaky?repo=acme/gitops", "/api/v1/rollouts/leaky?repo=acme/gitops"} {
		code, _, body := fetch(t, srv, path)
		if code != http.StatusOK || strings.Contains(body, "SECRET") || !strings.Contains(body, "xxxxx") || !strings.Contains(body, "leaky") {
			t.Errorf("GET %s: %d; want the new rollout with its credentials hidden:\n%s", path, code, body)
		}
	}
	code, _, body := fetch(t, srv, "/rollouts/leaky?repo=acme/gitops")
	if code != http.StatusOK || !strings.Contains(body, "no longer driven") {
		t.Errorf("a state without a plan: %d\n%s", code, body)
	}
}

// checkMarkup checks that every page has what a screen reader and a phone
// need, and a policy that lets nothing load from elsewhere.
func checkMarkup(t *testing.T, srv *httptest.Server) {
	for _, path := range []string{"/", "/rollouts/" + planReverted + "?repo=acme/gitops", "/rollouts/nope"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		for _, want := range []string{`<html lang="en">`, `<meta name="viewport" content="width=device-width, initial-scale=1">`,
			"<title>", "<header>", `<main id="main">`, "<footer>", "<h1>", `href="#main"`} {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s lacks %s", path, want)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		if strings.Contains(body, `src="http`) || strings.Contains(body, `stylesheet" href="http`) {
			t.Errorf("GET %s loads something from elsewhere", path)
		}
	}
}
