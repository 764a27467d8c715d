package canary

import (
	"strings"
	"testing"
)

// edit applies old→new replacements to goodPlan, each exactly once.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := goodPlan
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("goodPlan lacks %q", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// checkErrors parses plan and wants exactly the errors in want, each
// found as a substring of one line, or none when want is empty.
func checkErrors(t *testing.T, plan string, want []string) {
	t.Helper()
	_, err := ParsePlan([]byte(plan))
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("valid plan rejected: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("plan accepted, want %q", want)
	}
	lines := strings.Split(strings.TrimPrefix(err.Error(), ErrInvalidPlan.Error()+": "), "\n")
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || strings.Contains(l, w)
		}
		if !found {
			t.Errorf("missing %q in:\n%s", w, err)
		}
	}
	if len(lines) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(lines), len(want), err)
	}
}

const goodInterval = "      interval: 30s\n"

// Threshold gates are bounded: 1s ≤ interval ≤ 24h, 1 ≤ count ≤ 10000,
// failureLimit and inconclusiveLimit ≤ count, consecutiveErrorLimit ≤ 10000.
func TestValidateThresholdBounds(t *testing.T) {
	const f = "spec.gates[0].threshold."
	cases := []struct {
		name, fields string
		want         []string
	}{
		{"bounds inclusive", "interval: 1s\n      count: 10000\n      failureLimit: 10000\n      consecutiveErrorLimit: 10000", nil},
		{"a day", "interval: 24h\n      count: 5\n      inconclusiveLimit: 5", nil},
		{"sub-second interval", "interval: 500ms", []string{f + "interval: must be between 1s and 24h0m0s, got 500ms"}},
		{"zero interval", "interval: 0s", []string{f + "interval: must be between 1s and 24h0m0s, got 0s"}},
		{"interval over a day", "interval: 25h", []string{f + "interval: must be between 1s and 24h0m0s, got 25h0m0s"}},
		{"absurd count", "interval: 30s\n      count: 1000000", []string{f + "count: must be at most 10000, got 1000000"}},
		{"failureLimit over count", "interval: 30s\n      count: 5\n      failureLimit: 6",
			[]string{f + "failureLimit: must be at most count (5), got 6"}},
		{"inconclusiveLimit over default count", "interval: 30s\n      inconclusiveLimit: 9",
			[]string{f + "inconclusiveLimit: must be at most count (5), got 9"}},
		{"absurd consecutiveErrorLimit", "interval: 30s\n      consecutiveErrorLimit: 20000",
			[]string{f + "consecutiveErrorLimit: must be at most 10000, got 20000"}},
		{"limit over the cap with a bad count", "interval: 30s\n      count: 0\n      failureLimit: 10001",
			[]string{f + "count: must be at least 1, got 0", f + "failureLimit: must be at most count (10000), got 10001"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, edit(t, goodInterval, "      "+tc.fields+"\n"), tc.want)
		})
	}
}

// OCI repository names are lowercase after the host; the host is a DNS
// name, which may have capitals.
func TestValidateOCIRepositoryCase(t *testing.T) {
	const f = "spec.model.source.oci.repository: "
	cases := []struct {
		repo string
		want []string
	}{
		{"ghcr.io/acme/fraud-detector", nil},
		{"GHCR.io/acme/fraud_detector.v2", nil},
		{"localhost:5000/a/b__c", nil},
		{"ghcr.io/Acme/Fraud-Detector", []string{f + `must be lowercase after the host (OCI repository names are), ` +
			`got "ghcr.io/Acme/Fraud-Detector"; try "ghcr.io/acme/fraud-detector"`}},
		{"Acme/model", []string{f + `must be lowercase after the host`}},
		{"ghcr.io/acme/-model", []string{f + `has a path component "-model" that is not lowercase letters and digits`}},
		{"ghcr.io/acme//model", []string{f + `has a path component "" that is not`}},
		{"ghcr.io/" + strings.Repeat("a", 256), []string{f + "has a path of 256 characters, over the OCI limit of 255"}},
	}
	for _, tc := range cases {
		t.Run(tc.repo, func(t *testing.T) {
			checkErrors(t, withSource("oci: {repository: "+tc.repo+"}"), tc.want)
		})
	}
}

// spec.overlay stays out of .canarybot/, which the bot writes on its own.
func TestValidateOverlayOutsideBotDir(t *testing.T) {
	const overlay = "overlay: manifests/overlays/fraud-detector"
	cases := []struct {
		overlay string
		want    []string
	}{
		{"manifests/.canarybot", nil},
		{".canarybotx/overlay", nil},
		{".canarybot", []string{`spec.overlay: must not be .canarybot/ or inside it (canarybot's own state lives there), got ".canarybot"`}},
		{".canarybot/overlays/m", []string{`spec.overlay: must not be .canarybot/ or inside it`}},
		{".canarybot/state", []string{`spec.overlay: must not be .canarybot/ or inside it`}},
	}
	for _, tc := range cases {
		t.Run(tc.overlay, func(t *testing.T) {
			checkErrors(t, edit(t, overlay, "overlay: "+tc.overlay), tc.want)
		})
	}
}

// The Argo CD Application is a Kubernetes object: its name is a DNS-1123
// subdomain.
func TestValidateArgoCDApplicationName(t *testing.T) {
	const app = "argocd: {application: fraud-detector}"
	const f = "spec.argocd.application: "
	cases := []struct {
		name string
		want []string
	}{
		{"fraud-detector", nil},
		{"fraud.detector.v2", nil},
		{"a", nil},
		{strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61), nil},
		{strings.Repeat("a", 254), []string{f + "must be a Kubernetes name (a DNS-1123 subdomain"}},
		{"Fraud-Detector", []string{f + `must be a Kubernetes name (a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', ` +
			`starting and ending with a letter or digit, at most 253), got "Fraud-Detector"`}},
		{"fraud_detector", []string{`got "fraud_detector"`}},
		{"-fraud", []string{`got "-fraud"`}},
		{"fraud-", []string{`got "fraud-"`}},
		{"fraud..detector", []string{`got "fraud..detector"`}},
		{"'fraud detector'", []string{`got "fraud detector"`}},
		{"''", []string{f + "is required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, edit(t, app, "argocd: {application: "+tc.name+"}"), tc.want)
		})
	}
}

// Values of the wrong type are reported with their list index, together
// with unknown fields, in one run.
func TestDecodeStrictTypeErrors(t *testing.T) {
	cases := []struct {
		name  string
		pairs []string
		want  []string
	}{
		{"string for an int", []string{"- setWeight: 100", `- setWeight: "ten"`},
			[]string{`spec.steps[3].setWeight: want an integer, got "ten"`}},
		{"fraction for an int", []string{"- setWeight: 10\n", "- setWeight: 10.5\n"},
			[]string{`spec.steps[0].setWeight: want an integer, got 10.5`}},
		{"int out of range", []string{"- setWeight: 10\n", "- setWeight: 9223372036854775808\n"},
			[]string{`spec.steps[0].setWeight: want an integer, got 9223372036854775808, which is out of range`}},
		{"bool for a string", []string{"name: errors", "name: true"},
			[]string{`spec.gates[0].name: want a string, got true`}},
		{"string for a bool", []string{"- pause: {duration: 2m}", "- pause: {untilApproved: 'yes'}"},
			[]string{`spec.steps[2].pause.untilApproved: want a boolean (true or false), got "yes"`}},
		{"mapping for a list", []string{"- analysis: {gates: [errors]}", "- analysis: {gates: {errors: 1}}"},
			[]string{`spec.steps[1].analysis.gates: want a list, got a mapping`}},
		{"list for a mapping", []string{"  argocd: {application: fraud-detector}", "  argocd: [fraud-detector]"},
			[]string{`spec.argocd: want a mapping, got a list`}},
		{"map value", []string{"metadata:\n  name: fraud-detector", "metadata:\n  name: fraud-detector\n  labels: {team: 7}"},
			[]string{`metadata.labels.team: want a string, got 7`}},
		{"every problem at once", []string{
			"- setWeight: 10\n", "- setWeight: ten\n",
			"- pause: {duration: 2m}", "- pause: {duraton: 2m}",
			"      interval: 30s", "      interval: 30s\n      count: five\n      intervall: 1m",
			"  overlay: manifests", "  overlays: x\n  overlay: manifests",
		}, []string{
			`spec.gates[0].threshold.count: want an integer, got "five"`,
			`spec.gates[0].threshold.intervall: unknown field`,
			`spec.overlays: unknown field`,
			`spec.steps[0].setWeight: want an integer, got "ten"`,
			`spec.steps[2].pause.duraton: unknown field`,
		}},
		{"a bad duration beside a type error", []string{"2m", "two minutes", "- setWeight: 100", "- setWeight: [100]"}, []string{
			`spec.steps[2].pause.duration: parse duration "two minutes"`,
			`spec.steps[3].setWeight: want an integer, got a list`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, edit(t, tc.pairs...), tc.want)
		})
	}
}

// A document that is not a mapping says so, instead of a JSON error.
func TestDecodeStrictDocumentType(t *testing.T) {
	var p CanaryPlan
	err := DecodeStrict([]byte("- a\n- b\n"), &p)
	if err == nil || err.Error() != "(document): want a mapping, got a list" {
		t.Errorf("err = %v", err)
	}
	var s RolloutState
	if err := DecodeStrict([]byte("status: {stepIndex: 2, weight: 10, stable: {uri: x}}\n"), &s); err != nil {
		t.Errorf("valid state rejected: %v", err)
	}
	if err := DecodeStrict([]byte("status: {stepIndex: '2'}\n"), &s); err == nil ||
		err.Error() != `status.stepIndex: want an integer, got "2"` {
		t.Errorf("err = %v", err)
	}
}
