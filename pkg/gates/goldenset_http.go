package gates

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// MaxGoldenResponseBytes bounds each response a golden-set gate reads.
const MaxGoldenResponseBytes = 1 << 20

// GoldenSetGate is the canary.GateEvaluator of goldenSet gates: it reads
// the gate's golden set from the repo revision the plan came from, sends
// every case to stable and to the canary, scores both and compares.
// It sends the set once per step: a verdict (Successful or Failed) is
// remembered for the step it was reached in, keyed by the gate, its
// endpoints and the golden set's content, so that an analysis step that
// waits on other gates does not send the whole set again on every
// reconcile. A restarted process sends it once more.
type GoldenSetGate struct {
	// Client sends the requests; each is also bounded by the gate's
	// timeout. Nil uses a client that follows no redirects.
	Client *http.Client

	mu   sync.Mutex
	memo map[goldenMemoKey]canary.GateResult
}

// maxGoldenMemo bounds the remembered verdicts; the memo is emptied when
// it is full.
const maxGoldenMemo = 4096

type goldenMemoKey struct {
	gate      string
	stepStart int64
	sum       [sha256.Size]byte
}

var _ canary.GateEvaluator = (*GoldenSetGate)(nil)

// NewGoldenSetGate returns the evaluator with a client that follows no
// redirects (a redirect could carry the request, and its headers, off the
// endpoint the plan names).
func NewGoldenSetGate() *GoldenSetGate {
	return &GoldenSetGate{Client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Evaluate scores the golden set on both sides.
func (g *GoldenSetGate) Evaluate(ctx context.Context, gate canary.GateSpec, w canary.Window) (canary.GateResult, error) {
	spec := gate.GoldenSet
	if spec == nil {
		return canary.GateResult{}, canary.Terminalf("gate %s: no goldenSet block", gate.Name)
	}
	if w.Repo == nil {
		return canary.GateResult{}, canary.Terminalf("gate %s: no repository revision to read %s from", gate.Name, spec.Path)
	}
	b, err := canary.ReadRepoFile(w.Repo, spec.Path, canary.MaxGoldenSetBytes)
	if errors.Is(err, fs.ErrNotExist) {
		// The revision is immutable: retrying reads the same nothing.
		err = canary.Terminal(err)
	}
	if err != nil {
		return canary.GateResult{}, fmt.Errorf("gate %s: read golden set %s: %w", gate.Name, spec.Path, err)
	}
	gs, err := ParseGoldenSet(b)
	if err != nil {
		return canary.GateResult{}, canary.Terminal(fmt.Errorf("gate %s: %s: %w", gate.Name, spec.Path, err))
	}
	key, err := memoKey(gate, w, b)
	if err != nil {
		return canary.GateResult{}, err
	}
	if r, ok := g.remembered(key); ok {
		return r, nil
	}
	scores, err := g.score(ctx, gs, spec)
	if err != nil {
		return canary.GateResult{}, fmt.Errorf("gate %s: %w", gate.Name, err)
	}
	r := GoldenVerdict(gs, scores, *spec.Margin)
	r.Gate = gate.Name
	r.Query = fmt.Sprintf("%s (%s v%s, %d cases)", spec.Path, gs.Metadata.Name, gs.Metadata.Version, len(gs.Spec.Cases))
	g.remember(key, r)
	return r, nil
}

// memoKey identifies an evaluation: the gate as the plan defines it (its
// endpoints, margin and path), the golden set's bytes, and the step.
func memoKey(gate canary.GateSpec, w canary.Window, set []byte) (goldenMemoKey, error) {
	spec, err := json.Marshal(gate)
	if err != nil {
		return goldenMemoKey{}, fmt.Errorf("gate %s: encode: %w", gate.Name, err)
	}
	h := sha256.New()
	h.Write(spec)
	h.Write([]byte{0})
	h.Write(set)
	k := goldenMemoKey{gate: gate.Name, stepStart: w.Start.UnixNano()}
	h.Sum(k.sum[:0])
	return k, nil
}

func (g *GoldenSetGate) remembered(k goldenMemoKey) (canary.GateResult, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.memo[k]
	return r, ok
}

// remember keeps final verdicts only: Inconclusive or Error is tried again.
func (g *GoldenSetGate) remember(k goldenMemoKey, r canary.GateResult) {
	if r.Verdict != canary.VerdictSuccessful && r.Verdict != canary.VerdictFailed {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.memo == nil || len(g.memo) >= maxGoldenMemo {
		g.memo = map[goldenMemoKey]canary.GateResult{}
	}
	g.memo[k] = r
}

// score sends every case to both sides. A side none of whose requests got
// an answer is an error (retried): a comparison with an unreachable side
// means nothing. Otherwise a request that fails counts as a wrong answer.
func (g *GoldenSetGate) score(ctx context.Context, gs *GoldenSet, spec *canary.GoldenSetGate) (GoldenScores, error) {
	s := GoldenScores{Cases: len(gs.Spec.Cases)}
	for side, ep := range [2]canary.GoldenEndpoint{spec.Stable, spec.Canary} {
		reached := false
		var lastErr error
		for i, c := range gs.Spec.Cases {
			answer, err := g.ask(ctx, ep, c.Request, gs.answerPath(i), spec.Timeout.Duration)
			var unreached transportError
			switch {
			case ctx.Err() != nil:
				return s, fmt.Errorf("golden set: %w", ctx.Err())
			case !errors.As(err, &unreached):
				reached = true
			}
			if err == nil && gs.Score(i, answer) {
				s.Right[side]++
				continue
			}
			if err != nil {
				lastErr = err
				s.Wrong[side] = append(s.Wrong[side], fmt.Sprintf("%s (%s)", c.Name, err.Error()))
			} else {
				s.Wrong[side] = append(s.Wrong[side], c.Name)
			}
		}
		if !reached {
			return s, fmt.Errorf("golden set: %s side unreachable at %s: %w", sideName(side), ep.URL, lastErr)
		}
	}
	return s, nil
}

func sideName(side int) string {
	if side == 1 {
		return "canary"
	}
	return "stable"
}

// transportError is a request that got no answer at all.
type transportError struct{ err error }

func (e transportError) Error() string { return e.err.Error() }
func (e transportError) Unwrap() error { return e.err }

// ask POSTs one case and returns its answer.
func (g *GoldenSetGate) ask(ctx context.Context, ep canary.GoldenEndpoint, req map[string]any, path string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("new request: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	for k, v := range ep.Headers {
		hr.Header.Set(k, v)
	}
	client := g.Client
	if client == nil {
		client = NewGoldenSetGate().Client
	}
	resp, err := client.Do(hr)
	if err != nil {
		return "", transportError{fmt.Errorf("post: %w", err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxGoldenResponseBytes+1))
	if err != nil {
		return "", fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	if len(b) > MaxGoldenResponseBytes {
		return "", fmt.Errorf("answer over %d bytes", MaxGoldenResponseBytes)
	}
	return AnswerAt(b, path)
}
