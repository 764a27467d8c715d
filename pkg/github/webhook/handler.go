// Package webhook receives GitHub App webhook deliveries: it verifies the
// X-Hub-Signature-256 HMAC, bounds the body, drops replayed deliveries,
// parses the events canarybot acts on into neutral Events and queues them,
// answering 202 at once. Work happens off the request path; GitHub expects
// an answer within 10 seconds and never redelivers on its own, so a
// periodic sweep elsewhere recovers what a lost delivery would have done.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// DefaultMaxBody is GitHub's own cap on webhook payloads: 25 MiB.
const DefaultMaxBody = 25 << 20

// Headers GitHub sets on every delivery.
const (
	HeaderEvent     = "X-GitHub-Event"
	HeaderDelivery  = "X-GitHub-Delivery"
	HeaderSignature = "X-Hub-Signature-256"
)

// ErrSignature is returned by Verify for a missing or wrong signature.
var ErrSignature = errors.New("webhook signature does not match")

// Verify checks a X-Hub-Signature-256 header ("sha256=<hex>") against the
// HMAC-SHA256 of body under secret, in constant time.
func Verify(secret, body []byte, header string) error {
	want, err := parseSignature(header)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, Sign(secret, body)) {
		return ErrSignature
	}
	return nil
}

// parseSignature decodes a X-Hub-Signature-256 header to the raw MAC.
func parseSignature(header string) ([]byte, error) {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return nil, fmt.Errorf("%w: header %s must be sha256=<hex>", ErrSignature, HeaderSignature)
	}
	mac, err := hex.DecodeString(hexSig)
	if err != nil || len(mac) != sha256.Size {
		return nil, fmt.Errorf("%w: %s is not %d hex bytes", ErrSignature, HeaderSignature, sha256.Size)
	}
	return mac, nil
}

// Sign returns the raw HMAC-SHA256 of body under secret.
func Sign(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

// Handler serves POST /webhooks/github.
//
// A delivery without a well-formed signature header is refused (401), and
// one whose Content-Length is over MaxBody (413), before its body is read.
// Bodies are then read while their HMAC is computed, at most MaxInFlight
// at once and holding at most MemoryBudget bytes together; past either,
// the delivery is refused with 503 and Retry-After. A body not received
// within BodyTimeout is cut off (408). Serve it with NewServer, whose
// timeouts bound the rest of each connection.
type Handler struct {
	// Secret is the App's webhook secret. Required.
	Secret []byte
	// MaxBody bounds the payload. This and the limits below take their
	// defaults when zero or negative.
	MaxBody int64
	// MaxInFlight bounds the bodies being read at once
	// (DefaultMaxInFlight).
	MaxInFlight int
	// MemoryBudget bounds the bytes of bodies held at once
	// (DefaultMemoryBudget). Bodies over SmallBody share three quarters of
	// it, so MaxBody is lowered to that when larger.
	MemoryBudget int64
	// BodyTimeout bounds reading one body (DefaultBodyTimeout).
	BodyTimeout time.Duration
	// Seen drops replayed deliveries. Required.
	Seen *Deduper
	// Enqueue hands an event to the workers without blocking; false means
	// the queue is full and the delivery is refused with 503.
	Enqueue func(Event) bool
	Log     *slog.Logger
	// OnAck, when set, is told how long each answered delivery took (for
	// the ack-latency metric and benchmark).
	OnAck func(status int, d time.Duration)
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	once  sync.Once
	limit *limiter
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// ServeHTTP verifies, deduplicates, parses and queues one delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	status, msg := h.handle(w, r)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", RetryAfter)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
	if h.OnAck != nil {
		h.OnAck(status, h.now().Sub(start))
	}
}

func (h *Handler) limiter() *limiter {
	h.once.Do(func() {
		h.limit = newLimiter(positive(h.MaxInFlight, DefaultMaxInFlight), positive(h.MemoryBudget, DefaultMemoryBudget))
	})
	return h.limit
}

// positive is v, or def when v is zero or negative.
func positive[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// bodyLimit is MaxBody, lowered to what the memory budget admits.
func (h *Handler) bodyLimit() int64 {
	return min(positive(h.MaxBody, DefaultMaxBody), h.limiter().largeCap())
}

func (h *Handler) handle(w http.ResponseWriter, r *http.Request) (int, string) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, "want POST"
	}
	want, err := parseSignature(r.Header.Get(HeaderSignature))
	if err != nil {
		h.Log.Warn("webhook refused", "delivery", r.Header.Get(HeaderDelivery), "reason", err.Error())
		return http.StatusUnauthorized, err.Error()
	}
	limit := h.bodyLimit()
	if r.ContentLength > limit {
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("payload of %d bytes is over %d", r.ContentLength, limit)
	}
	body, held, status, msg := h.receive(w, r, want, limit)
	defer h.limiter().release(held)
	if status != 0 {
		return status, msg
	}
	kind, delivery := r.Header.Get(HeaderEvent), r.Header.Get(HeaderDelivery)
	if kind == "" || delivery == "" {
		return http.StatusBadRequest, fmt.Sprintf("missing %s or %s header", HeaderEvent, HeaderDelivery)
	}
	if h.Seen.Seen(delivery) {
		return http.StatusOK, "delivery " + delivery + " already handled"
	}
	ev, err := Parse(kind, body)
	switch {
	case errors.Is(err, ErrIgnored):
		h.Log.Info("webhook ignored", "event", kind, "delivery", delivery, "reason", err.Error())
		h.Seen.Mark(delivery)
		return http.StatusAccepted, err.Error()
	case err != nil:
		return http.StatusBadRequest, err.Error()
	}
	ev.Delivery = delivery
	if !h.Enqueue(ev) {
		return http.StatusServiceUnavailable, "queue full; the periodic sweep will catch up"
	}
	h.Seen.Mark(delivery)
	return http.StatusAccepted, "queued"
}

// receive reads the body into a bounded buffer, computing its HMAC as it
// goes, and checks it against want. A non-zero status is the refusal; the
// caller releases held budget bytes either way.
func (h *Handler) receive(w http.ResponseWriter, r *http.Request, want []byte, limit int64) (body []byte, held int64, status int, msg string) {
	l := h.limiter()
	if !l.enter() {
		return nil, 0, http.StatusServiceUnavailable, errBusy.Error()
	}
	defer l.leave()
	stop := bodyDeadline(w, positive(h.BodyTimeout, DefaultBodyTimeout))
	mac := hmac.New(sha256.New, h.Secret)
	body, held, err := readBody(io.TeeReader(r.Body, mac), r.ContentLength, limit, l)
	stop()
	switch {
	case errors.Is(err, errBusy):
		return nil, held, http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, errTooLarge):
		return nil, held, http.StatusRequestEntityTooLarge, fmt.Sprintf("payload over %d bytes", limit)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, held, http.StatusRequestTimeout, errBodyTimeout.Error()
	case err != nil:
		return nil, held, http.StatusBadRequest, err.Error()
	case !hmac.Equal(mac.Sum(nil), want):
		h.Log.Warn("webhook refused", "delivery", r.Header.Get(HeaderDelivery), "reason", ErrSignature.Error())
		return nil, held, http.StatusUnauthorized, ErrSignature.Error()
	}
	return body, held, 0, ""
}

// Queue is a bounded in-memory event queue.
type Queue struct{ c chan Event }

// NewQueue returns a queue holding up to n events.
func NewQueue(n int) *Queue { return &Queue{c: make(chan Event, n)} }

// Enqueue adds ev unless the queue is full.
func (q *Queue) Enqueue(ev Event) bool {
	select {
	case q.c <- ev:
		return true
	default:
		return false
	}
}

// Run calls handle for each event until ctx ends. Handle errors are the
// handler's to report; the queue only moves on.
func (q *Queue) Run(ctx context.Context, handle func(context.Context, Event)) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-q.c:
			handle(ctx, ev)
		}
	}
}
