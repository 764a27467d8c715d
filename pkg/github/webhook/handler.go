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
	"strings"
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
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return fmt.Errorf("%w: header %s must be sha256=<hex>", ErrSignature, HeaderSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrSignature, HeaderSignature)
	}
	if !hmac.Equal(got, Sign(secret, body)) {
		return ErrSignature
	}
	return nil
}

// Sign returns the raw HMAC-SHA256 of body under secret.
func Sign(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

// Handler serves POST /webhooks/github.
type Handler struct {
	// Secret is the App's webhook secret. Required.
	Secret []byte
	// MaxBody bounds the payload; DefaultMaxBody when zero.
	MaxBody int64
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
	status, msg := h.handle(r)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
	if h.OnAck != nil {
		h.OnAck(status, h.now().Sub(start))
	}
}

func (h *Handler) handle(r *http.Request) (int, string) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, "want POST"
	}
	limit := h.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("payload over %d bytes", limit)
	case err != nil:
		return http.StatusBadRequest, "read body: " + err.Error()
	}
	if err := Verify(h.Secret, body, r.Header.Get(HeaderSignature)); err != nil {
		h.Log.Warn("webhook refused", "delivery", r.Header.Get(HeaderDelivery), "reason", err.Error())
		return http.StatusUnauthorized, err.Error()
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
