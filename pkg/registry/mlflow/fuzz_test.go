package mlflow_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/registry/mlflow"
)

// FuzzParseEvent checks that ParseEvent never panics, refuses with a
// message, and that an event it accepts has an entity and an action and
// survives a JSON round trip; and that the webhook handler, given the same
// body correctly signed, answers 200 exactly when ParseEvent accepts it
// (else 400, or 413 over MaxBytes), wakes only for the watched model, and
// refuses the body with a signature that does not match (401).
func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		created,
		`{"entity":"model_version_alias","action":"created","timestamp":"2026-11-23T12:00:00Z","data":{"name":"fraud","alias":"champion","version":"7"}}`,
		`{"entity":"model_version_tag","action":"set","data":{"name":"fraud","version":"7","key":"validated","value":"true"}}`,
		`{"entity":"model_version_tag","action":"deleted","data":{"name":"other","version":"2","key":"validated"}}`,
		`{"entity":"registered_model","action":"created","data":{"name":"fraud","tags":{"team":"risk"}}}`,
		`{"entity":"x","action":"y","pad":"` + strings.Repeat("p", 5000) + `"}`,
		`{"entity":`, `{"name":"fraud"}`, `null`, `[]`, `{"entity":"a","action":"b"}{"x":1}`, `{"ENTITY":"a","Action":"b"}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := mlflow.ParseEvent(body)
		if err != nil {
			if !reflect.DeepEqual(ev, mlflow.Event{}) || err.Error() == "" {
				t.Fatalf("ParseEvent = %+v, %q: want no event and a message", ev, err)
			}
		} else {
			checkEvent(t, ev)
		}
		status, matched := deliver(t, body, "")
		switch {
		case len(body) > 4096 && status != http.StatusRequestEntityTooLarge,
			len(body) <= 4096 && err == nil && status != http.StatusOK,
			len(body) <= 4096 && err != nil && status != http.StatusBadRequest:
			t.Fatalf("signed delivery answered %d; ParseEvent said %v", status, err)
		case matched && (ev.Data.Name != "fraud" || !strings.HasPrefix(ev.Entity, "model_version")):
			t.Fatalf("event %s about %q woke the engine", ev.Name(), ev.Data.Name)
		}
		if status, _ := deliver(t, body, "v1,"+strings.Repeat("A", 43)+"="); len(body) <= 4096 && status != http.StatusUnauthorized {
			t.Fatalf("delivery with a wrong signature answered %d, want 401", status)
		}
	})
}

func checkEvent(t *testing.T, ev mlflow.Event) {
	t.Helper()
	if ev.Entity == "" || ev.Action == "" || ev.Name() != ev.Entity+"."+ev.Action {
		t.Fatalf("accepted event %+v without an entity or action", ev)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("marshal %+v: %v", ev, err)
	}
	again, err := mlflow.ParseEvent(b)
	if len(ev.Data.Tags) == 0 {
		ev.Data.Tags = nil // omitempty drops an empty map
	}
	if err != nil || !reflect.DeepEqual(again, ev) {
		t.Fatalf("event %+v came back from %s as %+v, %v", ev, b, again, err)
	}
}

// deliver posts body to a fresh handler watching model fraud, signed
// correctly or with sig, and returns the status and whether it woke.
func deliver(t *testing.T, body []byte, sig string) (status int, woke bool) {
	t.Helper()
	h, err := mlflow.NewWebhookHandler(mlflow.WebhookConfig{Secret: secret, Models: []string{"fraud"},
		Wake: func() { woke = true }, Clock: fixedClock{now}, MaxBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	r := delivery("d1", now, string(body), secret)
	if sig != "" {
		r.Header.Set(mlflow.HeaderSignature, sig)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code == http.StatusOK {
		var answer struct{ Matched bool }
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil || answer.Matched != woke {
			t.Fatalf("answer %s (%v) says matched %v; woke %v", w.Body, err, answer.Matched, woke)
		}
	}
	return w.Code, woke
}
