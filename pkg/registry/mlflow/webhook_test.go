package mlflow_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/registry/mlflow"
	"github.com/canarybot/canarybot/pkg/registry/mlflow/mlflowtest"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time                       { return c.t }
func (c fixedClock) After(time.Duration) <-chan time.Time { return make(chan time.Time) }

var secret = []byte("whsec-canarybot")

func newHandler(t *testing.T, wakes *atomic.Int32) *mlflow.WebhookHandler {
	t.Helper()
	h, err := mlflow.NewWebhookHandler(mlflow.WebhookConfig{Secret: secret, Models: []string{"fraud"},
		Wake: func() { wakes.Add(1) }, Clock: fixedClock{now}, MaxBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// The fake registry delivers signed webhooks exactly as MLflow does; the
// handler accepts them and wakes for the watched model only.
func TestWebhookFromTheFakeRegistry(t *testing.T) {
	var wakes atomic.Int32
	srv := httptest.NewServer(newHandler(t, &wakes))
	t.Cleanup(srv.Close)
	fake := mlflowtestServer(srv.URL)
	v := fake.CreateModelVersion("fraud", "runs:/a/model", store("1"), nil)
	if err := fake.SetTag("fraud", v, "validation_status", "approved"); err != nil {
		t.Fatal(err)
	}
	if err := fake.SetAlias("fraud", "challenger", v); err != nil {
		t.Fatal(err)
	}
	fake.CreateModelVersion("other-model", "runs:/b/model", store("b"), nil)
	ds := fake.Deliveries()
	if len(ds) != 4 {
		t.Fatalf("deliveries = %+v, want 4", ds)
	}
	for _, d := range ds {
		if d.Err != nil || d.Status != http.StatusOK {
			t.Errorf("delivery %s of %s: status %d, %v", d.ID, d.Event, d.Status, d.Err)
		}
	}
	if n := wakes.Load(); n != 3 {
		t.Errorf("wakes = %d, want 3 (created, tag set, alias created for fraud; none for other-model)", n)
	}
}

// A wrong secret or an unsigned webhook is refused and wakes nothing.
func TestWebhookFromAMisconfiguredRegistry(t *testing.T) {
	var wakes atomic.Int32
	srv := httptest.NewServer(newHandler(t, &wakes))
	t.Cleanup(srv.Close)
	for name, s := range map[string][]byte{"wrong secret": []byte("other"), "no secret": nil} {
		fake := mlflowtestServerWithSecret(srv.URL, s)
		fake.CreateModelVersion("fraud", "runs:/a/model", store("1"), nil)
		if d := fake.Deliveries(); len(d) != 1 || d[0].Status != http.StatusUnauthorized {
			t.Errorf("%s: deliveries %+v, want one 401", name, d)
		}
	}
	if wakes.Load() != 0 {
		t.Errorf("refused deliveries woke the engine %d times", wakes.Load())
	}
}

// delivery builds a request as MLflow sends it, signed with key at ts.
func delivery(id string, ts time.Time, body string, key []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hooks/mlflow", strings.NewReader(body))
	stamp := strconv.FormatInt(ts.Unix(), 10)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(mlflow.HeaderDeliveryID, id)
	r.Header.Set(mlflow.HeaderTimestamp, stamp)
	r.Header.Set(mlflow.HeaderSignature, mlflow.Sign(key, id, stamp, []byte(body)))
	return r
}

const created = `{"entity":"model_version","action":"created","timestamp":"2026-11-23T12:00:00Z",` +
	`"data":{"name":"fraud","version":"7","source":"runs:/a/model","run_id":"a","tags":{},"description":null}}`

func TestWebhookHandlerChecks(t *testing.T) {
	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		woke   bool
		say    string
	}{
		{"signed event wakes", func() *http.Request { return delivery("d1", now, created, secret) }, 200, true, `"matched":true`},
		{"rotated secrets: any valid signature", func() *http.Request {
			r := delivery("d2", now, created, secret)
			r.Header.Set(mlflow.HeaderSignature, "v1,bm9wZQ== "+r.Header.Get(mlflow.HeaderSignature))
			return r
		}, 200, true, ""},
		{"wrong secret", func() *http.Request { return delivery("d3", now, created, []byte("x")) }, 401, false, "bad signature"},
		{"body changed after signing", func() *http.Request {
			r := delivery("d4", now, created, secret)
			r.Body = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Replace(created, `"7"`, `"8"`, 1))).Body
			return r
		}, 401, false, "bad signature"},
		{"signature of another delivery id", func() *http.Request {
			r := delivery("d5", now, created, secret)
			r.Header.Set(mlflow.HeaderDeliveryID, "d5-other")
			return r
		}, 401, false, "bad signature"},
		{"unsigned", func() *http.Request {
			r := delivery("d6", now, created, secret)
			r.Header.Del(mlflow.HeaderSignature)
			return r
		}, 401, false, "unsigned delivery"},
		{"unknown signature version", func() *http.Request {
			r := delivery("d7", now, created, secret)
			r.Header.Set(mlflow.HeaderSignature, strings.Replace(r.Header.Get(mlflow.HeaderSignature), "v1,", "v2,", 1))
			return r
		}, 401, false, "bad signature"},
		{"stale timestamp", func() *http.Request { return delivery("d8", now.Add(-6*time.Minute), created, secret) }, 401, false, "replay or a skewed clock"},
		{"future timestamp", func() *http.Request { return delivery("d9", now.Add(6*time.Minute), created, secret) }, 401, false, "more than 5m0s"},
		{"timestamp not a number", func() *http.Request {
			r := delivery("d10", now, created, secret)
			r.Header.Set(mlflow.HeaderTimestamp, "yesterday")
			return r
		}, 401, false, "not a Unix time"},
		{"other model", func() *http.Request {
			return delivery("d11", now, strings.Replace(created, `"fraud"`, `"churn"`, 1), secret)
		}, 200, false, `"matched":false`},
		{"event that cannot change the proposal", func() *http.Request {
			return delivery("d12", now, `{"entity":"registered_model","action":"created","data":{"name":"fraud"}}`, secret)
		}, 200, false, `"event":"registered_model.created"`},
		{"signed but malformed", func() *http.Request { return delivery("d13", now, `{"entity":`, secret) }, 400, false, "not an MLflow webhook event"},
		{"signed but not an event", func() *http.Request { return delivery("d14", now, `{"name":"fraud"}`, secret) }, 400, false, "entity and action are required"},
		{"oversized", func() *http.Request {
			return delivery("d15", now, `{"entity":"x","action":"y","pad":"`+strings.Repeat("p", 5000)+`"}`, secret)
		}, 413, false, "over 4096 bytes"},
		{"wrong content type", func() *http.Request {
			r := delivery("d16", now, created, secret)
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, 415, false, "want application/json"},
		{"GET", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/hooks/mlflow", nil) }, 405, false, "want POST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var wakes atomic.Int32
			h := newHandler(t, &wakes)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, tc.req())
			if rec.Code != tc.status {
				t.Fatalf("status = %d (%s), want %d", rec.Code, rec.Body, tc.status)
			}
			if (wakes.Load() == 1) != tc.woke {
				t.Errorf("wakes = %d, want woke=%v", wakes.Load(), tc.woke)
			}
			if !strings.Contains(rec.Body.String(), tc.say) {
				t.Errorf("body %q does not say %q", rec.Body, tc.say)
			}
		})
	}
}

// A captured delivery sent again is refused, even within the window.
func TestWebhookRefusesReplays(t *testing.T) {
	var wakes atomic.Int32
	h := newHandler(t, &wakes)
	first := httptest.NewRecorder()
	h.ServeHTTP(first, delivery("d-1", now, created, secret))
	again := httptest.NewRecorder()
	h.ServeHTTP(again, delivery("d-1", now, created, secret))
	if first.Code != 200 || again.Code != http.StatusConflict || !strings.Contains(again.Body.String(), "already received") {
		t.Fatalf("first %d, replay %d %s", first.Code, again.Code, again.Body)
	}
	if wakes.Load() != 1 {
		t.Errorf("wakes = %d, want 1", wakes.Load())
	}
	// A forged delivery cannot burn a real delivery id.
	forged := httptest.NewRecorder()
	h.ServeHTTP(forged, delivery("d-2", now, created, []byte("attacker")))
	real := httptest.NewRecorder()
	h.ServeHTTP(real, delivery("d-2", now, created, secret))
	if forged.Code != 401 || real.Code != 200 {
		t.Errorf("forged %d, real %d; want 401 then 200", forged.Code, real.Code)
	}
}

func TestNewWebhookHandlerNeedsASecret(t *testing.T) {
	if _, err := mlflow.NewWebhookHandler(mlflow.WebhookConfig{Wake: func() {}, Clock: fixedClock{now}}); err == nil {
		t.Fatal("a handler without a secret was created")
	}
}

// MLflow's signature is v1,base64(HMAC-SHA256(secret, "id.timestamp.body")).
func TestSignMatchesMLflow(t *testing.T) {
	// Computed with Python's hmac/hashlib/base64 as mlflow/webhooks/delivery.py does.
	got := mlflow.Sign([]byte("secret"), "id", "1700000000", []byte(`{"a":1}`))
	if got != "v1,"+pySig {
		t.Fatalf("Sign = %s, want v1,%s", got, pySig)
	}
}

// pySig is base64(hmac.new(b"secret", b'id.1700000000.{"a":1}', sha256).digest()).
const pySig = "3CH39uZxMTTZBV9mdW9gtiSAvyyKNbQXkIxpNKFkcco="

// mlflowtestServer is a fake registry that delivers every model-registry
// event to url, signed with secret.
func mlflowtestServer(url string) *mlflowtest.Server {
	return mlflowtestServerWithSecret(url, secret)
}

func mlflowtestServerWithSecret(url string, key []byte) *mlflowtest.Server {
	fake := mlflowtest.NewServer()
	fake.Now = func() time.Time { return now }
	fake.AddWebhook(url, key, "registered_model.created", "model_version.created", "model_version_tag.set",
		"model_version_tag.deleted", "model_version_alias.created", "model_version_alias.deleted")
	return fake
}

// With WakeModel, the caller decides which models are watched.
func TestWebhookRoutesByModel(t *testing.T) {
	var offered []string
	h, err := mlflow.NewWebhookHandler(mlflow.WebhookConfig{Secret: secret, Clock: fixedClock{now},
		WakeModel: func(m string) bool { offered = append(offered, m); return m == "fraud" }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	fake := mlflowtestServer(srv.URL)
	fake.CreateModelVersion("fraud", "runs:/a/model", store("1"), nil)
	fake.CreateModelVersion("other-model", "runs:/b/model", store("b"), nil)
	if got := strings.Join(offered, ","); got != "fraud,other-model" {
		t.Errorf("offered %s, want each event's model once", got)
	}
	if _, err := mlflow.NewWebhookHandler(mlflow.WebhookConfig{Secret: secret, Clock: fixedClock{now}}); err == nil {
		t.Error("a handler with neither Wake nor WakeModel was accepted")
	}
}
