package webhook

import (
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// GitHub's published test vector ("Validating webhook deliveries").
func TestVerifyGitHubTestVector(t *testing.T) {
	secret := []byte("It's a Secret to Everybody")
	body := []byte("Hello, World!")
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := "sha256=" + hex.EncodeToString(Sign(secret, body)); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if err := Verify(secret, body, want); err != nil {
		t.Fatalf("Verify(test vector) = %v", err)
	}
	for _, bad := range []string{"", "sha1=757107ea", "sha256=zz", want[:len(want)-1] + "0"} {
		if err := Verify(secret, body, bad); !errors.Is(err, ErrSignature) {
			t.Errorf("Verify(%q) = %v, want ErrSignature", bad, err)
		}
	}
}

type harness struct {
	h      *Handler
	queued []Event
	full   bool
}

func newHarness() *harness {
	hs := &harness{}
	hs.h = &Handler{
		Secret: []byte("s3cret"), MaxBody: 1 << 10, Seen: NewDeduper(100, time.Hour, nil),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Enqueue: func(ev Event) bool {
			if hs.full {
				return false
			}
			hs.queued = append(hs.queued, ev)
			return true
		},
	}
	return hs
}

func (hs *harness) post(event, delivery, body, sig string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/github", strings.NewReader(body))
	r.Header.Set(HeaderEvent, event)
	r.Header.Set(HeaderDelivery, delivery)
	if sig == "" {
		sig = "sha256=" + hex.EncodeToString(Sign(hs.h.Secret, []byte(body)))
	}
	r.Header.Set(HeaderSignature, sig)
	w := httptest.NewRecorder()
	hs.h.ServeHTTP(w, r)
	return w
}

func TestHandlerStatuses(t *testing.T) {
	review := reviewPayload("approved")
	cases := []struct {
		name     string
		event    string
		body     string
		sig      string
		full     bool
		want     int
		wantKind string
	}{
		{name: "signed review is queued", event: "pull_request_review", body: review, want: 202, wantKind: KindReview},
		{name: "bad signature", event: "pull_request_review", body: review, sig: "sha256=00", want: 401},
		{name: "missing signature", event: "pull_request_review", body: review, sig: "none", want: 401},
		{name: "oversized body", event: "pull_request_review", body: strings.Repeat("x", 2<<10), want: 413},
		{name: "unknown event is accepted and ignored", event: "star", body: `{"action":"created"}`, want: 202},
		{name: "ignored action", event: "pull_request_review", body: strings.Replace(review, `"submitted"`, `"edited"`, 1), want: 202},
		{name: "malformed JSON", event: "pull_request_review", body: `{"action":`, want: 400},
		{name: "queue full", event: "pull_request_review", body: review, full: true, want: 503},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness()
			hs.full = tc.full
			sig := tc.sig
			if sig == "none" {
				sig = "x"
			}
			w := hs.post(tc.event, "d-1", tc.body, sig)
			if w.Code != tc.want {
				t.Fatalf("status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tc.want)
			}
			switch {
			case tc.wantKind != "" && (len(hs.queued) != 1 || hs.queued[0].Kind != tc.wantKind || hs.queued[0].Delivery != "d-1"):
				t.Fatalf("queued %+v, want one %s event from delivery d-1", hs.queued, tc.wantKind)
			case tc.wantKind == "" && len(hs.queued) != 0:
				t.Fatalf("queued %+v, want nothing", hs.queued)
			}
		})
	}
}

func TestReplayedDeliveryDoesNothing(t *testing.T) {
	hs := newHarness()
	body := reviewPayload("approved")
	if w := hs.post("pull_request_review", "d-7", body, ""); w.Code != 202 {
		t.Fatalf("first delivery: %d", w.Code)
	}
	if w := hs.post("pull_request_review", "d-7", body, ""); w.Code != 200 || !strings.Contains(w.Body.String(), "already handled") {
		t.Fatalf("replay: %d %q", w.Code, w.Body.String())
	}
	if len(hs.queued) != 1 {
		t.Fatalf("queued %d events, want 1", len(hs.queued))
	}
	// A refused delivery (queue full) is not remembered: GitHub's redelivery
	// of it must go through.
	hs.full = true
	if w := hs.post("pull_request_review", "d-8", body, ""); w.Code != 503 {
		t.Fatalf("full queue: %d", w.Code)
	}
	hs.full = false
	if w := hs.post("pull_request_review", "d-8", body, ""); w.Code != 202 {
		t.Fatalf("redelivery after a refusal: %d", w.Code)
	}
}

func TestDeduperForgetsByAgeAndSize(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	d := NewDeduper(2, time.Minute, func() time.Time { return now })
	d.Mark("a")
	d.Mark("b")
	d.Mark("c")
	if d.Seen("a") || !d.Seen("b") || !d.Seen("c") {
		t.Fatalf("size bound: a=%v b=%v c=%v, want false true true", d.Seen("a"), d.Seen("b"), d.Seen("c"))
	}
	now = now.Add(time.Minute)
	if d.Seen("c") {
		t.Fatal("c outlived its TTL")
	}
}
