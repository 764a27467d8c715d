package canary

import (
	"strings"
	"testing"
	"time"
)

// judge.watch defaults to 0 (no extra wait) and must not be negative.
func TestJudgeWatch(t *testing.T) {
	withWatch := func(w string) string {
		return strings.Replace(judgePlan("vllm", "[]"), "judge: {metrics: []}", "judge: {watch: "+w+"}", 1)
	}
	p, err := ParsePlan([]byte(strings.Replace(judgePlan("vllm", "[]"), "judge: {metrics: []}", "judge: {}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if w := p.Spec.Gates[0].Judge.Watch; w == nil || w.Duration != 0 {
		t.Fatalf("default watch %v, want 0", w)
	}
	p, err = ParsePlan([]byte(withWatch("15m")))
	if err != nil || p.Spec.Gates[0].Judge.Watch.Duration != 15*time.Minute {
		t.Fatalf("watch: 15m: %v, %v", p, err)
	}
	if _, err := ParsePlan([]byte(withWatch("-1m"))); err == nil || !strings.Contains(err.Error(), "spec.gates[0].judge.watch: must not be negative, got -1m0s") {
		t.Fatalf("watch: -1m: error %v", err)
	}
}
