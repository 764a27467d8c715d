package canary

import (
	"strings"
	"testing"
)

func qualityPlan(signalMetrics, gate string) string {
	return `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: qwen}
spec:
  model: {name: qwen, source: {oci: {repository: ghcr.io/acme/qwen}}}
  traffic: {mode: kserve, kserve: {inferenceService: qwen}}
  overlay: manifests/overlays/qwen
  argocd: {application: qwen}
  signals: {preset: vllm, stable: {role: stable}, canary: {role: canary}, metrics: ` + signalMetrics + `}
  steps:
  - setWeight: 10
  - analysis: {gates: [q]}
  gates:
  - name: q
    ` + gate + `
`
}

func TestGuardrailDefaultsAndValidation(t *testing.T) {
	p, err := ParsePlan([]byte(qualityPlan("{conversions: shop_conversions_total}",
		"judge: {guardrails: [{name: conversion, success: conversions, total: requests}]}")))
	if err != nil {
		t.Fatal(err)
	}
	g := p.Spec.Gates[0].Judge.Guardrails[0]
	if *g.PromoteMargin != DefaultPromoteMargin || *g.RollbackMargin != DefaultRollbackMargin || g.LabelDelay.Duration != 0 {
		t.Errorf("defaults %+v", g)
	}
	for _, tc := range []struct{ guardrail, want string }{
		{"{name: errors, success: conversions, total: requests}", `guardrails[0].name: duplicate name "errors"`},
		{"{name: c, success: sales, total: requests}", `guardrails[0].success: counter "sales" is not named in signals.metrics`},
		{"{name: c, success: conversions, total: latency}", `guardrails[0].total: "latency" is not a counter`},
		{"{name: c, success: conversions}", `guardrails[0].total: is required`},
		{"{name: c, success: conversions, total: conversions}", `guardrails[0].success: must differ from total`},
		{"{name: c, success: conversions, total: requests, promoteMargin: 0.05, rollbackMargin: 0.03}", `guardrails[0].rollbackMargin: must be above promoteMargin 0.05`},
		{"{name: c, success: conversions, total: requests, rollbackMargin: 1.5}", `guardrails[0].rollbackMargin: must be in (0, 1)`},
		{"{name: c, success: conversions, total: requests, labelDelay: -1m}", `guardrails[0].labelDelay: must be between 0 and 24h`},
		{"{name: c, success: conversions, total: requests, delay: 1m}", `guardrails[0].delay`},
	} {
		_, err := ParsePlan([]byte(qualityPlan("{conversions: shop_conversions_total}", "judge: {guardrails: ["+tc.guardrail+"]}")))
		if err == nil || !strings.Contains(err.Error(), "spec.gates[0].judge."+tc.want) && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.guardrail, err, tc.want)
		}
	}
}

func TestGoldenSetGateValidation(t *testing.T) {
	p, err := ParsePlan([]byte(qualityPlan("{}", `goldenSet: {path: .canarybot/golden/qwen.yaml,
      stable: {url: "http://qwen-stable.models/v1/completions"},
      canary: {url: "http://gateway.models/v1/completions", headers: {x-canary: always}}}`)))
	if err != nil {
		t.Fatal(err)
	}
	g := p.Spec.Gates[0]
	if g.Type != GateGoldenSet || *g.GoldenSet.Margin != 0 || g.GoldenSet.Timeout.Duration != DefaultGoldenTimeout {
		t.Errorf("defaults: type %q, %+v", g.Type, g.GoldenSet)
	}
	for _, tc := range []struct{ block, want string }{
		{`{path: ../x.yaml, stable: {url: "http://s/"}, canary: {url: "http://c/"}}`, "spec.gates[0].goldenSet.path: must stay inside the repo"},
		{`{path: g.yaml, margin: 1, stable: {url: "http://s/"}, canary: {url: "http://c/"}}`, "spec.gates[0].goldenSet.margin: must be in [0, 1)"},
		{`{path: g.yaml, stable: {url: "ftp://s/"}, canary: {url: "http://c/"}}`, "spec.gates[0].goldenSet.stable.url: must be an http(s) URL"},
		{`{path: g.yaml, stable: {url: "http://u:p@s/"}, canary: {url: "http://c/"}}`, "spec.gates[0].goldenSet.stable.url: must be an http(s) URL without credentials"},
		{`{path: g.yaml, stable: {url: "http://s/"}, canary: {url: "http://c/", headers: {Authorization: x}}}`, "spec.gates[0].goldenSet.canary.headers.Authorization"},
		{`{path: g.yaml, stable: {url: "http://s/"}, canary: {url: "http://s/"}}`, "spec.gates[0].goldenSet.canary: reaches stable's URL with no header"},
		{`{path: g.yaml, timeout: 0s, stable: {url: "http://s/"}, canary: {url: "http://c/"}}`, "spec.gates[0].goldenSet.timeout"},
	} {
		_, err := ParsePlan([]byte(qualityPlan("{}", "goldenSet: "+tc.block)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.block, err, tc.want)
		}
	}
	_, err = ParsePlan([]byte(qualityPlan("{}", `type: goldenSet
    judge: {}`)))
	if err == nil || !strings.Contains(err.Error(), "spec.gates[0]: a goldenSet gate needs exactly its own goldenSet block") {
		t.Errorf("goldenSet type with a judge block: %v", err)
	}
}
