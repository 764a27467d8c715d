package mlflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/artifact"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/registry/mlflow"
	"github.com/canarybot/canarybot/pkg/registry/mlflow/mlflowtest"
)

// newMLflow starts the fake registry and returns it with its URL.
func newMLflow(t *testing.T) (*mlflowtest.Server, string) {
	t.Helper()
	fake := mlflowtest.NewServer()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv.URL
}

func mlflowPlan(trackingURI, model, alias string, tags map[string]string) *canary.CanaryPlan {
	return &canary.CanaryPlan{Metadata: canary.ObjectMeta{Name: "fraud"}, Spec: canary.PlanSpec{Model: canary.ModelSpec{
		Name: "fraud", Source: canary.SourceSpec{MLflow: &canary.MLflowSource{
			TrackingURI: trackingURI, Model: model, Alias: alias, RequireTags: tags}}}}}
}

func store(v string) string { return "s3://mlflow/1/run" + v + "/artifacts/model" }

func latest(t *testing.T, w *mlflow.Watcher, p *canary.CanaryPlan) *canary.Artifact {
	t.Helper()
	a, err := w.Latest(context.Background(), p)
	if err != nil {
		t.Fatalf("Latest: %v", err)
	}
	return a
}

var approved = map[string]string{"validation_status": "approved"}

func TestWatcherFollowsAliasWithRequiredTags(t *testing.T) {
	fake, uri := newMLflow(t)
	for _, v := range []string{"1", "2", "3"} {
		fake.CreateModelVersion("fraud", "runs:/run"+v+"/model", store(v), nil)
	}
	if err := fake.SetTag("fraud", "2", "validation_status", "approved"); err != nil {
		t.Fatal(err)
	}
	if err := fake.SetAlias("fraud", "challenger", "2"); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	w := mlflow.NewWatcher(mlflow.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	plan := mlflowPlan(uri, "fraud", "challenger", approved)
	a := latest(t, w, plan)
	want := canary.Artifact{URI: "models:/fraud/2", Version: "2", StorageURI: store("2")}
	if a == nil || *a != want {
		t.Fatalf("Latest = %+v, want %+v", a, want)
	}
	if ref, err := artifact.Parse(a.URI); err != nil || !ref.Pinned() {
		t.Fatalf("proposed URI %s is not pinned: %v", a.URI, err)
	}

	// The alias moves to a version without the tag: nothing is proposed,
	// and the reason is logged once however often the watcher looks.
	if err := fake.SetAlias("fraud", "challenger", "3"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if a := latest(t, w, plan); a != nil {
			t.Fatalf("an unapproved version was proposed: %+v", a)
		}
	}
	if n := strings.Count(logs.String(), "lacks tag validation_status=approved"); n != 1 {
		t.Errorf("reason logged %d times, want once:\n%s", n, logs.String())
	}
	if err := fake.SetTag("fraud", "3", "validation_status", "rejected"); err != nil {
		t.Fatal(err)
	}
	if a := latest(t, w, plan); a != nil || !strings.Contains(logs.String(), "has tag validation_status=rejected, not approved") {
		t.Fatalf("a rejected version: %+v\n%s", a, logs.String())
	}
	if err := fake.SetTag("fraud", "3", "validation_status", "approved"); err != nil {
		t.Fatal(err)
	}
	if a := latest(t, w, plan); a == nil || a.URI != "models:/fraud/3" || a.StorageURI != store("3") {
		t.Fatalf("after approval: %+v", a)
	}
}

func TestWatcherPicksTheHighestQualifyingVersion(t *testing.T) {
	fake, uri := newMLflow(t)
	fake.CreateModelVersion("fraud", "runs:/a/model", store("1"), approved)
	fake.CreateModelVersion("fraud", "runs:/b/model", store("2"), approved)
	fake.CreateModelVersion("fraud", "runs:/c/model", store("3"), map[string]string{"validation_status": "pending"})
	for i := 0; i < 12; i++ {
		fake.CreateModelVersion("fraud-shadow", "runs:/x/model", store("x"), approved)
	}
	if err := fake.SetStatus("fraud", "2", "PENDING_REGISTRATION"); err != nil {
		t.Fatal(err)
	}
	w := mlflow.NewWatcher(mlflow.WithPageSize(1)) // follow next_page_token
	a := latest(t, w, mlflowPlan(uri, "fraud", "", approved))
	if a == nil || a.URI != "models:/fraud/1" || a.StorageURI != store("1") {
		t.Fatalf("Latest = %+v, want version 1 (2 is not READY, 3 not approved)", a)
	}
	a = latest(t, w, mlflowPlan(uri, "fraud", "", nil))
	if a == nil || a.URI != "models:/fraud/3" {
		t.Fatalf("Latest without required tags = %+v, want version 3", a)
	}
	a = latest(t, w, mlflowPlan(uri, "fraud-shadow", "", nil))
	if a == nil || a.URI != "models:/fraud-shadow/12" {
		t.Fatalf("Latest of fraud-shadow = %+v, want version 12 (numeric order, across pages)", a)
	}
}

func TestWatcherNothingToPropose(t *testing.T) {
	fake, uri := newMLflow(t)
	fake.CreateModelVersion("fraud", "runs:/a/model", store("1"), nil)
	w := mlflow.NewWatcher()
	for name, p := range map[string]*canary.CanaryPlan{
		"alias not set":        mlflowPlan(uri, "fraud", "challenger", nil),
		"model missing":        mlflowPlan(uri, "nope", "challenger", nil),
		"model without search": mlflowPlan(uri, "nope", "", nil),
	} {
		if a := latest(t, w, p); a != nil {
			t.Errorf("%s: Latest = %+v, want nil", name, a)
		}
	}
}

func TestWatcherRefusesUnservableStorage(t *testing.T) {
	fake, uri := newMLflow(t)
	fake.CreateModelVersion("fraud", "runs:/a/model", "mlflow-artifacts:/1/a/artifacts/model", nil)
	_, err := mlflow.NewWatcher().Latest(context.Background(), mlflowPlan(uri, "fraud", "", nil))
	if !errors.Is(err, mlflow.ErrNotServable) || canary.IsTerminal(err) || !strings.Contains(err.Error(), "mlflow-artifacts:/1/a") {
		t.Fatalf("err = %v, want a retryable ErrNotServable naming the location", err)
	}
	a, err := mlflow.NewWatcher(mlflow.WithServableSchemes("mlflow-artifacts")).Latest(context.Background(), mlflowPlan(uri, "fraud", "", nil))
	if err != nil || a == nil || a.StorageURI != "mlflow-artifacts:/1/a/artifacts/model" {
		t.Fatalf("with mlflow-artifacts allowed: %+v, %v", a, err)
	}
}

func TestWatcherBadPlanIsTerminal(t *testing.T) {
	noSource := mlflowPlan("http://m", "fraud", "", nil)
	noSource.Spec.Model.Source.MLflow = nil
	for name, p := range map[string]*canary.CanaryPlan{
		"no source":   noSource,
		"bad URI":     mlflowPlan("ftp://m", "fraud", "", nil),
		"nil plan":    nil,
		"no host URI": mlflowPlan("http://", "fraud", "", nil),
	} {
		_, err := mlflow.NewWatcher().Latest(context.Background(), p)
		if !canary.IsTerminal(err) || !errors.Is(err, canary.ErrInvalidPlan) {
			t.Errorf("%s: err = %v, want a terminal ErrInvalidPlan", name, err)
		}
	}
}

func TestWatcherAuthAndUnreachable(t *testing.T) {
	fake, uri := newMLflow(t)
	fake.Token = "tok"
	fake.CreateModelVersion("fraud", "runs:/a/model", store("1"), nil)
	_, err := mlflow.NewWatcher().Latest(context.Background(), mlflowPlan(uri, "fraud", "", nil))
	var apiErr *mlflow.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || canary.IsTerminal(err) {
		t.Fatalf("anonymous: err = %v, want a retryable 401", err)
	}
	a, err := mlflow.NewWatcher(mlflow.WithToken("tok")).Latest(context.Background(), mlflowPlan(uri, "fraud", "", nil))
	if err != nil || a == nil || a.URI != "models:/fraud/1" {
		t.Fatalf("with the token: %+v, %v", a, err)
	}
	dead := httptest.NewServer(nil)
	dead.Close()
	if _, err := mlflow.NewWatcher().Latest(context.Background(), mlflowPlan(dead.URL, "fraud", "", nil)); err == nil || canary.IsTerminal(err) {
		t.Fatalf("unreachable server: %v, want a retryable error", err)
	}
}

// The fake answers as MLflow does, so the watcher is tested against
// MLflow's real shapes.
func TestFakeAnswersAsMLflow(t *testing.T) {
	fake, uri := newMLflow(t)
	fake.CreateModelVersion("fraud", "runs:/a/model", store("1"), map[string]string{"team": "risk"})
	fake.CreateModelVersion("fraud", "runs:/b/model", store("2"), nil)
	get := func(path string, q url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(uri + path + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: not JSON: %s", path, b)
		}
		return resp.StatusCode, m
	}
	cases := []struct {
		name, path string
		q          url.Values
		status     int
		code, msg  string
	}{
		{"unknown model alias", "/api/2.0/mlflow/registered-models/alias", url.Values{"name": {"x"}, "alias": {"a"}},
			404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=x not found"},
		{"unknown alias", "/api/2.0/mlflow/registered-models/alias", url.Values{"name": {"fraud"}, "alias": {"champion"}},
			404, "RESOURCE_DOES_NOT_EXIST", "Registered model alias champion not found."},
		{"unknown version", "/api/2.0/mlflow/model-versions/get-download-uri", url.Values{"name": {"fraud"}, "version": {"9"}},
			404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=fraud, version=9) not found"},
		{"missing parameter", "/api/2.0/mlflow/model-versions/get", url.Values{"name": {"fraud"}},
			400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'version'"},
		{"bad filter", "/api/2.0/mlflow/model-versions/search", url.Values{"filter": {"name LIKE 'f%'"}},
			400, "INVALID_PARAMETER_VALUE", "Invalid filter"},
		{"bad key", "/api/2.0/mlflow/model-versions/search", url.Values{"filter": {"stage='x'"}},
			400, "INVALID_PARAMETER_VALUE", "Invalid attribute key 'stage'"},
		{"unknown endpoint", "/api/2.0/mlflow/nope", nil, 404, "ENDPOINT_NOT_FOUND", ""},
	}
	for _, tc := range cases {
		status, body := get(tc.path, tc.q)
		if status != tc.status || body["error_code"] != tc.code || !strings.Contains(body["message"].(string), tc.msg) {
			t.Errorf("%s: %d %v, want %d %s %q", tc.name, status, body, tc.status, tc.code, tc.msg)
		}
	}
	for filter, want := range map[string]int{
		`name='fraud'`: 2, `name = "fraud"`: 2, `name='fraud' AND tags.team='risk'`: 1,
		"name='fraud' and tags.`team` = 'ops'": 0, `name='other'`: 0, ``: 2,
	} {
		status, body := get("/api/2.0/mlflow/model-versions/search", url.Values{"filter": {filter}})
		got, _ := body["model_versions"].([]any)
		if status != 200 || len(got) != want {
			t.Errorf("filter %q: %d, %d versions, want %d", filter, status, len(got), want)
		}
	}
	status, body := get("/api/2.0/mlflow/model-versions/get", url.Values{"name": {"fraud"}, "version": {"1"}})
	mv, _ := body["model_version"].(map[string]any)
	if status != 200 || mv["version"] != "1" || mv["status"] != "READY" || mv["source"] != "runs:/a/model" {
		t.Errorf("get: %d %v", status, body)
	}
}

// A tracking URI with a credential in it is never quoted with it: not
// when it is refused, not in Go's HTTP client's error (which hides a
// password but not a user-only token).
func TestWatcherErrorsHideCredentials(t *testing.T) {
	dead := httptest.NewServer(nil)
	dead.Close()
	for name, uri := range map[string]string{
		"unreachable, user only": strings.Replace(dead.URL, "http://", "http://SECRET@", 1),
		"unreachable, password":  strings.Replace(dead.URL, "http://", "http://u:SECRET@", 1),
		"refused URI":            "ftp://u:SECRET@m",
	} {
		_, err := mlflow.NewWatcher().Latest(context.Background(), mlflowPlan(uri, "fraud", "", nil))
		if err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: err = %v, want an error without the credential", name, err)
		}
	}
}
