package registry

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

type fakeSource struct {
	LatestFn func(ctx context.Context, p *canary.CanaryPlan) (*canary.Artifact, error)
}

func (f fakeSource) Latest(ctx context.Context, p *canary.CanaryPlan) (*canary.Artifact, error) {
	return f.LatestFn(ctx, p)
}

func answer(uri string) fakeSource {
	return fakeSource{LatestFn: func(context.Context, *canary.CanaryPlan) (*canary.Artifact, error) {
		return &canary.Artifact{URI: uri}, nil
	}}
}

func planWith(src canary.SourceSpec) *canary.CanaryPlan {
	return &canary.CanaryPlan{Metadata: canary.ObjectMeta{Name: "m"}, Spec: canary.PlanSpec{Model: canary.ModelSpec{Source: src}}}
}

func TestSourcesRoutesByKind(t *testing.T) {
	digest := "sha256:" + strings.Repeat("a", 64)
	s := Sources{OCI: answer("from-oci"), MLflow: answer("from-mlflow")}
	ctx := context.Background()
	cases := []struct {
		name string
		src  canary.SourceSpec
		want canary.Artifact
	}{
		{"oci", canary.SourceSpec{OCI: &canary.OCISource{Repository: "r.io/m"}}, canary.Artifact{URI: "from-oci"}},
		{"mlflow", canary.SourceSpec{MLflow: &canary.MLflowSource{Model: "m"}}, canary.Artifact{URI: "from-mlflow"}},
		{"static, tag kept as version", canary.SourceSpec{Static: &canary.StaticSource{URI: "OCI://R.io/m:v3@" + digest}},
			canary.Artifact{URI: "oci://r.io/m:v3@" + digest, Version: "v3"}},
		{"static with a label", canary.SourceSpec{Static: &canary.StaticSource{URI: "gs://bucket/m.tar#17", Version: "2026-11"}},
			canary.Artifact{URI: "gs://bucket/m.tar#17", Version: "2026-11"}},
	}
	for _, tc := range cases {
		a, err := s.Latest(ctx, planWith(tc.src))
		if err != nil || a == nil || *a != tc.want {
			t.Errorf("%s: Latest = %+v, %v; want %+v", tc.name, a, err, tc.want)
		}
	}
}

func TestSourcesRefusesWhatItCannotPin(t *testing.T) {
	ctx := context.Background()
	_, err := Sources{}.Latest(ctx, planWith(canary.SourceSpec{Static: &canary.StaticSource{URI: "oci://r.io/m:v3"}}))
	if !canary.IsTerminal(err) || !errors.Is(err, canary.ErrMutableReference) || !strings.Contains(err.Error(), `tag "v3" can move`) {
		t.Errorf("mutable static URI: %v", err)
	}
	if _, err := (Sources{}).Latest(ctx, planWith(canary.SourceSpec{MLflow: &canary.MLflowSource{Model: "m"}})); !canary.IsTerminal(err) {
		t.Errorf("no MLflow watcher: %v", err)
	}
	if _, err := (Sources{}).Latest(ctx, planWith(canary.SourceSpec{})); !errors.Is(err, canary.ErrInvalidPlan) {
		t.Errorf("no source: %v", err)
	}
}

// A watcher's error quoting a URL with a credential (a registry's redirect
// to a presigned blob URL) comes out without it, still terminal or not.
func TestSourcesErrorsHideCredentials(t *testing.T) {
	leak := canary.Terminal(errors.New(`GET "https://bucket.s3.amazonaws.com/blob?X-Amz-Signature=SECRET": 403 Forbidden`))
	s := Sources{OCI: fakeSource{LatestFn: func(context.Context, *canary.CanaryPlan) (*canary.Artifact, error) { return nil, leak }}}
	_, err := s.Latest(context.Background(), planWith(canary.SourceSpec{OCI: &canary.OCISource{Repository: "ghcr.io/x/y"}}))
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "X-Amz-Signature=xxxxx") {
		t.Errorf("err = %v, want the signature hidden", err)
	}
	if !canary.IsTerminal(err) || !errors.Is(err, leak) {
		t.Errorf("err = %v lost its chain", err)
	}
}
