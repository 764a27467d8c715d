package modelsim_test

import (
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/canarybot/canarybot/internal/modelsim"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
)

// goldenFile is a golden set over the prompts of goldenAnswers, scored
// exactly, by regex and by number.
const goldenFile = `apiVersion: canarybot.dev/v1alpha1
kind: GoldenSet
metadata: {name: demo-smoke, version: "3"}
spec:
  cases:
  - {name: capital-fr, request: {model: demo-llm, prompt: "capital of France?", max_tokens: 8}, expect: {exact: Paris}}
  - {name: capital-it, request: {model: demo-llm, prompt: "capital of Italy?", max_tokens: 8}, expect: {exact: Rome}}
  - {name: capital-jp, request: {model: demo-llm, prompt: "capital of Japan?", max_tokens: 8}, expect: {regex: "(?i)^tokyo\\b"}}
  - {name: colour, request: {model: demo-llm, prompt: "colour of the sky?", max_tokens: 8}, expect: {regex: "blue"}}
  - {name: sum, request: {model: demo-llm, prompt: "2+3=", max_tokens: 8}, expect: {number: 5}}
  - {name: pi, request: {model: demo-llm, prompt: "pi to two places", max_tokens: 8}, expect: {number: 3.14, tolerance: 0.005}}
  - {name: boiling, request: {model: demo-llm, prompt: "water boils at (C)", max_tokens: 8}, expect: {number: 100, tolerance: 1}}
  - {name: sqrt, request: {model: demo-llm, prompt: "square root of 81", max_tokens: 8}, expect: {number: 9}}
  - {name: chat, request: {model: demo-llm, messages: [{role: user, content: "say hello"}]}, expect: {regex: "^hello"}}
  - {name: planets, request: {model: demo-llm, prompt: "planets in the solar system", max_tokens: 8}, expect: {number: 8}}
`

func goldenAnswers() map[string]string {
	return map[string]string{
		"capital of France?": "Paris", "capital of Italy?": " Rome\n", "capital of Japan?": "Tokyo is the capital",
		"colour of the sky?": "it is blue", "2+3=": "5", "pi to two places": "about 3.14159",
		"water boils at (C)": "100.4 degrees", "square root of 81": "9", "say hello": "hello there",
		"planets in the solar system": "There are 8 planets.",
	}
}

// startSide starts a simulated model server that knows goldenAnswers and
// answers the share wrong of them wrongly.
func startSide(t *testing.T, role modelsim.Role, wrong float64) *modelsim.Server {
	t.Helper()
	s, err := modelsim.NewServer(modelsim.ServerConfig{
		ModelName: "demo-llm", Version: "v1", Role: role, Rand: rand.New(rand.NewPCG(1, 1)),
		Behaviour: modelsim.Behaviour{LatencyMedian: 200 * time.Microsecond, LatencySigma: 0.2,
			TTFTMedian: 50 * time.Microsecond, Answers: goldenAnswers(), WrongAnswers: wrong},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// goldenGate is a plan's goldenSet gate, defaulted and validated.
func goldenGate(t *testing.T, block string) canary.GateSpec {
	t.Helper()
	plan := `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: demo}
spec:
  model: {name: demo, source: {static: {uri: "oci://r/demo@sha256:` + strings.Repeat("a", 64) + `"}}}
  traffic:
    mode: gateway
    gateway:
      httpRoute: demo
      stable: {inferenceService: demo-stable, service: demo-stable}
      canary: {inferenceService: demo-canary, service: demo-canary}
  overlay: apps/demo
  argocd: {application: demo}
  gates:
  - name: golden
    goldenSet: ` + block + `
  steps:
  - setHeaderRoute: {name: dogfood, match: [{headers: [{name: X-Canary, value: always}]}]}
  - analysis: {gates: [golden]}
  - setWeight: 10
`
	p, err := canary.ParsePlan([]byte(plan))
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.Gates[0].Type != canary.GateGoldenSet {
		t.Fatalf("gate type %q; want %q", p.Spec.Gates[0].Type, canary.GateGoldenSet)
	}
	return p.Spec.Gates[0]
}

func repoWith(golden string) fstest.MapFS {
	return fstest.MapFS{".canarybot/golden/demo.yaml": {Data: []byte(golden)}}
}

func evalGolden(t *testing.T, gate canary.GateSpec, repo fstest.MapFS) (canary.GateResult, error) {
	t.Helper()
	now := time.Now()
	return gates.ForSignals(nil, nil).Evaluate(context.Background(), gate,
		canary.Window{Start: now, Now: now, Repo: repo})
}

// TestGoldenSetAgainstModelServers sends the golden set to real simulated
// model servers: directly to each side's server, and to the canary through
// a router's header route. An identical canary passes; one that answers
// part of the set wrongly fails, naming the cases, unless the margin
// allows for as many.
func TestGoldenSetAgainstModelServers(t *testing.T) {
	stable := startSide(t, modelsim.RoleStable, 0)
	good := startSide(t, modelsim.RoleCanary, 0)
	bad := startSide(t, modelsim.RoleCanary, 0.4)
	router := func(canaryURL string) string {
		r, err := modelsim.NewRouter(modelsim.RouterConfig{StableURL: stable.URL(), CanaryURL: canaryURL,
			StableWeight: 100, CanaryHeaders: map[string]string{"X-Canary": "always"}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := r.Start(ctx, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r.URL()
	}
	direct := func(canaryURL, margin string) string {
		return `{path: .canarybot/golden/demo.yaml, margin: ` + margin + `,
      stable: {url: "` + stable.URL() + `/v1/completions"}, canary: {url: "` + canaryURL + `/v1/completions"}}`
	}
	viaRoute := func(canaryURL string) string {
		return `{path: .canarybot/golden/demo.yaml,
      stable: {url: "` + stable.URL() + `/v1/completions"},
      canary: {url: "` + router(canaryURL) + `/v1/completions", headers: {X-Canary: always}}}`
	}
	// The plan's own header route: the gate sends its match's headers.
	viaPlanRoute := func(canaryURL string) string {
		return `{path: .canarybot/golden/demo.yaml, headerRoute: dogfood,
      stable: {url: "` + stable.URL() + `/v1/completions"},
      canary: {url: "` + router(canaryURL) + `/v1/completions"}}`
	}
	for _, tc := range []struct {
		name, block string
		want        canary.Verdict
	}{
		{"identical canary through the plan's header route passes", viaPlanRoute(good.URL()), canary.VerdictSuccessful},
		{"wrong answers through the plan's header route fail", viaPlanRoute(bad.URL()), canary.VerdictFailed},
		{"identical canary passes", direct(good.URL(), "0"), canary.VerdictSuccessful},
		{"wrong answers fail", direct(bad.URL(), "0.05"), canary.VerdictFailed},
		{"a wide margin allows them", direct(bad.URL(), "0.9"), canary.VerdictSuccessful},
		{"identical canary through a header route passes", viaRoute(good.URL()), canary.VerdictSuccessful},
		{"wrong answers through a header route fail", viaRoute(bad.URL()), canary.VerdictFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := evalGolden(t, goldenGate(t, tc.block), repoWith(goldenFile))
			if err != nil {
				t.Fatal(err)
			}
			if r.Verdict != tc.want {
				t.Fatalf("verdict %s (%s); want %s", r.Verdict, r.Reason, tc.want)
			}
			if !strings.Contains(r.Reason, "demo-smoke v3") || !strings.Contains(r.Reason, "stable 10/10") {
				t.Errorf("reason %q does not name the set and stable's full score", r.Reason)
			}
			if tc.want == canary.VerdictFailed && !strings.Contains(r.Reason, "canary wrong on ") {
				t.Errorf("reason %q does not name the cases the canary got wrong", r.Reason)
			}
		})
	}
}

// TestGoldenSetRefusals: an unreachable side is an error, not a verdict;
// the golden set must be a regular, valid file of the repo.
func TestGoldenSetRefusals(t *testing.T) {
	stable := startSide(t, modelsim.RoleStable, 0)
	gate := goldenGate(t, `{path: .canarybot/golden/demo.yaml, timeout: 2s,
      stable: {url: "`+stable.URL()+`/v1/completions"}, canary: {url: "http://127.0.0.1:1/v1/completions"}}`)
	if _, err := evalGolden(t, gate, repoWith(goldenFile)); err == nil || !strings.Contains(err.Error(), "canary side unreachable") {
		t.Errorf("unreachable canary: err %v; want canary side unreachable", err)
	}
	gate.GoldenSet.Canary.URL = stable.URL() + "/v1/completions"
	link := fstest.MapFS{".canarybot/golden/demo.yaml": {Data: []byte("/etc/passwd"), Mode: fs.ModeSymlink | 0o777}}
	_, err := evalGolden(t, gate, link)
	if err == nil || !canary.IsTerminal(err) {
		t.Errorf("golden set behind a symlink: err %v; want a terminal error", err)
	}
	bad := strings.Replace(goldenFile, "expect: {exact: Paris}", "expect: {exact: Paris, regex: P}", 1)
	_, err = evalGolden(t, gate, repoWith(bad))
	if err == nil || !canary.IsTerminal(err) || !strings.Contains(err.Error(), "spec.cases[0].expect") {
		t.Errorf("two scorers: err %v; want a terminal error naming spec.cases[0].expect", err)
	}
	if _, err = evalGolden(t, gate, fstest.MapFS{}); !errors.Is(err, fs.ErrNotExist) || !canary.IsTerminal(err) {
		t.Errorf("missing golden set: err %v; want a terminal not-exist error", err)
	}
}

// countingTransport counts the requests a client sends.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestGoldenSetIsSentOncePerStep: an analysis step re-evaluated on every
// reconcile sends the set once; a new step, or a changed set, sends it
// again.
func TestGoldenSetIsSentOncePerStep(t *testing.T) {
	stable := startSide(t, modelsim.RoleStable, 0)
	bad := startSide(t, modelsim.RoleCanary, 0.4)
	gate := goldenGate(t, `{path: .canarybot/golden/demo.yaml,
      stable: {url: "`+stable.URL()+`/v1/completions"}, canary: {url: "`+bad.URL()+`/v1/completions"}}`)
	sent := &countingTransport{}
	g := &gates.GoldenSetGate{Client: &http.Client{Transport: sent}}
	step := time.Now()
	eval := func(start time.Time, repo fstest.MapFS) canary.GateResult {
		t.Helper()
		r, err := g.Evaluate(context.Background(), gate, canary.Window{Start: start, Now: start.Add(time.Minute), Repo: repo})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cases := int64(strings.Count(goldenFile, "- {name:"))
	first := eval(step, repoWith(goldenFile))
	if first.Verdict != canary.VerdictFailed || sent.n.Load() != 2*cases {
		t.Fatalf("first evaluation: %s (%s), %d requests; want Failed after %d", first.Verdict, first.Reason, sent.n.Load(), 2*cases)
	}
	if again := eval(step, repoWith(goldenFile)); again.Reason != first.Reason || sent.n.Load() != 2*cases {
		t.Errorf("the same step again: %q, %d requests in all; want the remembered verdict and no request", again.Reason, sent.n.Load())
	}
	eval(step.Add(time.Minute), repoWith(goldenFile))
	if sent.n.Load() != 4*cases {
		t.Errorf("a new step: %d requests in all, want %d", sent.n.Load(), 4*cases)
	}
	eval(step.Add(time.Minute), repoWith(strings.Replace(goldenFile, `version: "3"`, `version: "4"`, 1)))
	if sent.n.Load() != 6*cases {
		t.Errorf("a changed golden set: %d requests in all, want %d", sent.n.Load(), 6*cases)
	}
}
