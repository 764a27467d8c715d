package oci

import (
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

// ValidatePlan refuses, with its field path, the semver constraints the
// watcher would refuse at run time.
func TestValidatePlanSemver(t *testing.T) {
	cases := []struct {
		semver, want string // want "": valid
	}{
		{"", ""},
		{">=1.0.0", ""},
		{"~1.2, !=1.2.3", ""},
		{">= 1.0 < 2.0 || 3.x", ""},
		{">=banana", `spec.model.source.oci.semver: invalid semver constraint ">=banana": improper constraint: >=banana`},
		{"latest", `spec.model.source.oci.semver: invalid semver constraint "latest": improper constraint: latest`},
		{">=1.0.0.0", `spec.model.source.oci.semver: invalid semver constraint ">=1.0.0.0": improper constraint: >=1.0.0.0`},
	}
	for _, tc := range cases {
		t.Run(tc.semver, func(t *testing.T) {
			err := ValidatePlan(ociPlan("ghcr.io/acme/m", canary.OCISource{Policy: canary.OCIPolicySemver, Semver: tc.semver}))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("valid constraint rejected: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("err = %v, want %s", err, tc.want)
			}
			if _, serr := newSelector(&canary.OCISource{Semver: tc.semver}); (serr == nil) != (err == nil) {
				t.Errorf("ValidatePlan says %v, the watcher's selector %v", err, serr)
			}
		})
	}
	if err := ValidatePlan(&canary.CanaryPlan{}); err != nil {
		t.Errorf("a plan without an OCI source: %v", err)
	}
}
