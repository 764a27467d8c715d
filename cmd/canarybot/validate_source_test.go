package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// canarybot validate refuses a plan that would roll out a mutable
// reference, and says why.
func TestValidateRejectsAMutableReference(t *testing.T) {
	dir := t.TempDir()
	write := func(name, source string) string {
		p := filepath.Join(dir, name)
		plan := strings.Replace(retryPlan, "source: {oci: {repository: ghcr.io/acme/fraud-detector}}", source, 1)
		if err := os.WriteFile(p, []byte(plan), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tag := write("tag.yaml", "source: {static: {uri: 'oci://ghcr.io/acme/fraud-detector:v2'}}")
	alias := write("alias.yaml", "source: {static: {uri: 'models:/fraud@champion'}}")
	pinned := write("pinned.yaml", "source: {static: {uri: 'oci://ghcr.io/acme/fraud-detector@sha256:"+strings.Repeat("2", 64)+"'}}")
	mlflow := write("mlflow.yaml", "source: {mlflow: {trackingURI: 'https://mlflow.example.com', model: fraud, alias: challenger, "+
		"requireTags: {validation_status: approved}}}")
	out, _, err := run(t, "validate", tag, alias, pinned, mlflow)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err = %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{
		`tag.yaml: spec.model.source.static.uri: artifact reference "oci://ghcr.io/acme/fraud-detector:v2" is mutable: ` +
			`tag "v2" can move to another digest; pin it as oci://ghcr.io/acme/fraud-detector@sha256:<digest>`,
		`alias.yaml: spec.model.source.static.uri: artifact reference "models:/fraud@champion" is mutable: alias "champion" can be reassigned`,
		"pinned.yaml: ok",
		"mlflow.yaml: ok",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
