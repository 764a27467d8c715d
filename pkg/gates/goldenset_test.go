package gates

import (
	"os"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestGoldenSetScorers(t *testing.T) {
	gs, err := ParseGoldenSet([]byte(`apiVersion: canarybot.dev/v1alpha1
kind: GoldenSet
metadata: {name: s, version: "1"}
spec:
  cases:
  - {name: exact, request: {prompt: a}, expect: {exact: " Paris "}}
  - {name: regex, request: {prompt: b}, expect: {regex: "^(?i)tokyo\\b"}}
  - {name: number, request: {prompt: c}, expect: {number: 3.14, tolerance: 0.01}}
  - {name: integer, request: {prompt: d}, expect: {number: -2}}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		i      int
		answer string
		want   bool
	}{
		{0, "Paris\n", true}, {0, "paris", false}, {0, "Paris, France", false},
		{1, "tokyo is big", true}, {1, "Tokyoite", false}, {1, "in Tokyo", false},
		{2, "pi is 3.141", true}, {2, "3.2", false}, {2, "no idea", false},
		{3, "-2", true}, {3, "2", false}, {3, "-2.0e0 apples", true},
	} {
		if got := gs.Score(tc.i, tc.answer); got != tc.want {
			t.Errorf("case %s, answer %q: scored %v, want %v", gs.Spec.Cases[tc.i].Name, tc.answer, got, tc.want)
		}
	}
}

func TestGoldenSetValidationNamesFields(t *testing.T) {
	_, err := ParseGoldenSet([]byte(`apiVersion: canarybot.dev/v1alpha1
kind: GoldenSets
metadata: {name: s}
spec:
  cases:
  - {name: a, request: {prompt: a}, expect: {exact: x, number: 1}}
  - {name: a, request: {}, expect: {regex: "("}}
  - {name: c, request: {prompt: c}, expect: {exact: x, tolerance: 1}}
`))
	for _, want := range []string{"kind:", "metadata.version:", "spec.cases[0].expect:", "spec.cases[1].name:",
		"spec.cases[1].request:", "spec.cases[1].expect.regex:", "spec.cases[2].expect.tolerance:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	_, err = ParseGoldenSet([]byte("apiVersion: canarybot.dev/v1alpha1\nkind: GoldenSet\nmetadata: {name: s, version: '1'}\nspec: {cases: [{name: a, request: {p: 1}, expect: {exact: x}, expected: y}]}\n"))
	if err == nil || !strings.Contains(err.Error(), "spec.cases[0].expected") {
		t.Errorf("unknown field: err %v; want it named", err)
	}
	big := "apiVersion: canarybot.dev/v1alpha1\n# " + strings.Repeat("x", canary.MaxGoldenSetBytes) + "\n"
	if _, err := ParseGoldenSet([]byte(big)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized set: err %v", err)
	}
}

func TestAnswerAt(t *testing.T) {
	body := []byte(`{"choices":[{"text":"hi","message":{"content":"yo"}}],"predictions":[1.5,{"a":true}]}`)
	for path, want := range map[string]string{
		"choices.0.text": "hi", "choices.0.message.content": "yo", "predictions.0": "1.5", "predictions.1": `{"a":true}`,
	} {
		if got, err := AnswerAt(body, path); err != nil || got != want {
			t.Errorf("AnswerAt %s = %q, %v; want %q", path, got, err, want)
		}
	}
	for _, path := range []string{"choices.1.text", "choices.x", "missing", "choices.0.text.more"} {
		if _, err := AnswerAt(body, path); err == nil {
			t.Errorf("AnswerAt %s: no error", path)
		}
	}
	if _, err := AnswerAt([]byte("not json"), "a"); err == nil {
		t.Error("AnswerAt on text: no error")
	}
}

func TestGoldenVerdictMargin(t *testing.T) {
	gs := &GoldenSet{Metadata: GoldenSetMeta{Name: "s", Version: "2"}}
	for _, tc := range []struct {
		stable, canary int
		margin         float64
		want           canary.Verdict
	}{
		{20, 20, 0, canary.VerdictSuccessful},
		{18, 20, 0, canary.VerdictSuccessful}, // better than stable
		{20, 19, 0.05, canary.VerdictSuccessful},
		{20, 18, 0.05, canary.VerdictFailed},
		{10, 9, 0, canary.VerdictFailed},
	} {
		s := GoldenScores{Cases: 20, Right: [2]int{tc.stable, tc.canary}}
		if r := GoldenVerdict(gs, s, tc.margin); r.Verdict != tc.want {
			t.Errorf("stable %d, canary %d, margin %g: %s (%s); want %s", tc.stable, tc.canary, tc.margin, r.Verdict, r.Reason, tc.want)
		}
	}
}

// The shipped example golden set parses.
func TestExampleGoldenSetParses(t *testing.T) {
	b, err := os.ReadFile("../../examples/golden/qwen-smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	gs, err := ParseGoldenSet(b)
	if err != nil {
		t.Fatal(err)
	}
	if gs.answerPath(3) != "choices.0.message.content" || gs.answerPath(0) != DefaultAnswerPath {
		t.Errorf("answer paths %q, %q", gs.answerPath(0), gs.answerPath(3))
	}
}
