package rolloutsimport

import "strings"

// Suggestion is the judge-based replacement for imported threshold gates,
// with the reasons the project documents; empty when the plan has none.
func Suggestion(r *Result) string {
	if r == nil || r.ThresholdGates == 0 {
		return ""
	}
	return strings.Join([]string{
		"Suggestion: replace the imported threshold gates with canarybot's judge (as examples/qwen-gateway.yaml does):",
		"",
		"  spec:",
		"    signals:",
		"      preset: vllm                 # or kserve: the model server's own metric names",
		"      stable: {version: stable}    # label matchers of each side's series",
		"      canary: {version: canary}",
		"    gates:",
		"    - name: screen                 # early steps: passes while there is no evidence of harm",
		"      judge: {mode: screen}",
		"    - name: confirm                # before full traffic: passes on evidence the canary is not materially worse",
		"      judge: {mode: confirm}",
		"    - name: kv-cache               # a gauge, for KV-cache pressure",
		"      gauge: {signal: kvCache, max: 0.9, horizon: 10m}",
		"",
		"Why (docs/judge.md, \"Why not a fixed-window test or a threshold\"): a threshold such as",
		"\"p95 < 2 s, errors < 5%\" never fires on a 0.1% -> 1% error regression or a 40% latency",
		"regression; the judge compares the canary with stable on the same traffic with anytime-valid",
		"sequential tests that may look every 10 s and still revert a canary that is no worse with",
		"chance at most 5% (alpha). `make bench` (README, \"Decision quality\") runs both, the judge",
		"beside the threshold policy p95 < 2 s, errors < 5%, KV cache < 90%, 60 s x 5, failureLimit 2,",
		"on identical simulated traces and prints each one's correct-outcome rates and the canary",
		"requests before each decision. Keep a threshold gate only for a fixed SLO.",
		"",
	}, "\n")
}
