package bench

import (
	"context"
	"math"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	runs := []Run{
		{Expected: "revert", Outcome: "revert", CanaryRequests: 100, DecidedAfter: 10},
		{Expected: "revert", Outcome: "promote", CanaryRequests: 900, DecidedAfter: 90},
		{Expected: "revert", Outcome: "timeout", CanaryRequests: 500, DecidedAfter: 50},
		{Expected: "revert", Outcome: "revert", CanaryRequests: 200, DecidedAfter: 20},
		{Expected: "revert", Outcome: "revert", CanaryRequests: 300, DecidedAfter: 30},
	}
	s := Summarize(runs)
	if s.Runs != 5 || s.Correct != 3 || s.BadPromotions != 1 || s.Timeouts != 1 || s.FalseReverts != 0 {
		t.Errorf("counts %+v", s)
	}
	if s.MedianRequests != 300 || s.P80Requests != 500 || s.P95Requests != 900 || s.MedianSeconds != 30 {
		t.Errorf("quantiles %+v", s)
	}
	if math.Abs(s.CorrectRate()-0.6) > 1e-12 {
		t.Errorf("rate %g", s.CorrectRate())
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("quantile of nothing must be NaN")
	}
}

func TestRenderMarksTargets(t *testing.T) {
	res := Results{}
	for seed := uint64(0); seed < 100; seed++ {
		res.Add(PolicyJudge, Run{Scenario: "aa-identical", Seed: seed, Expected: "promote", Outcome: "promote", CanaryRequests: 3000})
		res.Add(PolicyStrict, Run{Scenario: "aa-identical", Seed: seed, Expected: "promote", Outcome: "promote", CanaryRequests: 3000})
		res.Add(PolicyBaseline, Run{Scenario: "aa-identical", Seed: seed, Expected: "promote", Outcome: "promote", CanaryRequests: 9000})
		out := "revert"
		if seed == 0 {
			out = "promote" // one bad promotion
		}
		res.Add(PolicyJudge, Run{Scenario: "error-rate-10x", Seed: seed, Expected: "revert", Outcome: out, CanaryRequests: 800})
		res.Add(PolicyBaseline, Run{Scenario: "error-rate-10x", Seed: seed, Expected: "revert", Outcome: "promote", CanaryRequests: 9000})
	}
	var b strings.Builder
	ok := Render(&b, res, []string{"aa-identical", "error-rate-10x"}, 100)
	out := b.String()
	for _, want := range []string{
		"[FAIL] 0 bad canaries promoted: 1 promoted",
		"[PASS] A/A false reverts ≤ 5% (judge, peeking every 10 s): 0/100",
		"[PASS] A/A false reverts ≤ 1% (judge-strict, peeking every 10 s): 0/100",
		"[PASS] errors 0.1%→1% decided within 1500 canary requests at p80: p80 = 800",
		"[FAIL] latency +40% decided within 300 canary requests at p95: latency-plus-40 not run",
		"[PASS] every scenario correct",
		"3.0×", "11.2×",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if ok {
		t.Error("a failed target must make Render report failure")
	}
}

func TestWebhookAckAnswersEveryDelivery(t *testing.T) {
	r, err := WebhookAck(context.Background(), 50, 4)
	if err != nil {
		t.Fatal(err)
	}
	if r.Bot.N != 50 || r.Bot.Non2xx != 0 || r.Baseline.Non2xx != 0 {
		t.Fatalf("bot %+v baseline %+v: want 50 deliveries, all answered 2xx", r.Bot, r.Baseline)
	}
	var b strings.Builder
	RenderWebhook(&b, r)
	if !strings.Contains(b.String(), "p99 ratio canarybot/baseline") {
		t.Fatalf("table lacks the ratio:\n%s", b.String())
	}
}
