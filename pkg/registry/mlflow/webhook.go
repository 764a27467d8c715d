package mlflow

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/registry/notify"
)

// Headers MLflow (3.3 and later) sends with each webhook delivery.
const (
	HeaderSignature  = "X-MLflow-Signature"
	HeaderDeliveryID = "X-MLflow-Delivery-Id"
	HeaderTimestamp  = "X-MLflow-Timestamp"
	// SignatureVersion prefixes the signature: "v1,<base64 HMAC-SHA256>".
	SignatureVersion = "v1"
)

// Webhook defaults.
const (
	DefaultTolerance       = 5 * time.Minute
	DefaultWebhookMaxBytes = 256 << 10
	// maxSeenDeliveries bounds the replay cache.
	maxSeenDeliveries = 10000
)

// Sign computes MLflow's webhook signature: "v1," then the base64
// HMAC-SHA256, keyed by the webhook's secret, of
// "<delivery id>.<unix timestamp>.<body>".
func Sign(secret []byte, deliveryID, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(deliveryID + "." + timestamp + "."))
	mac.Write(body)
	return SignatureVersion + "," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// verify reports whether header holds a valid signature of the delivery.
// It accepts space-separated signatures (as Standard Webhooks does during
// a secret rotation) and compares in constant time.
func verify(secret []byte, header, deliveryID, timestamp string, body []byte) bool {
	want, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(Sign(secret, deliveryID, timestamp, body), SignatureVersion+","))
	ok := false
	for _, sig := range strings.Fields(header) {
		v, b64, found := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if found && v == SignatureVersion && err == nil && hmac.Equal(got, want) {
			ok = true
		}
	}
	return ok
}

// Event is an MLflow webhook payload.
type Event struct {
	Entity    string    `json:"entity"`
	Action    string    `json:"action"`
	Timestamp string    `json:"timestamp"`
	Data      EventData `json:"data"`
}

// EventData is the union of the model-registry payloads' fields.
type EventData struct {
	Name    string            `json:"name"`
	Version string            `json:"version,omitempty"`
	Alias   string            `json:"alias,omitempty"`
	Key     string            `json:"key,omitempty"`
	Value   string            `json:"value,omitempty"`
	Source  string            `json:"source,omitempty"`
	RunID   string            `json:"run_id,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
}

// ParseEvent decodes a webhook payload; it needs entity and action.
func ParseEvent(body []byte) (Event, error) {
	var ev Event
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&ev); err != nil {
		return Event{}, fmt.Errorf("not an MLflow webhook event: %w", err)
	}
	if ev.Entity == "" || ev.Action == "" {
		return Event{}, errors.New("not an MLflow webhook event: entity and action are required")
	}
	return ev, nil
}

// Name is the event's name as MLflow lists it, e.g. model_version.created.
func (e Event) Name() string { return e.Entity + "." + e.Action }

// wakes reports whether the event can change which version is proposed.
func (e Event) wakes() bool {
	switch e.Name() {
	case "model_version.created", "model_version_tag.set", "model_version_tag.deleted",
		"model_version_alias.created", "model_version_alias.deleted":
		return true
	}
	return false
}

// WebhookHandler receives MLflow model-registry webhooks and wakes the
// engine when an event concerns a watched model. Create the webhook in
// MLflow with a secret; unsigned deliveries are refused.
//
// It answers 405 to anything but POST, 415 to another Content-Type than
// application/json, 413 to a body over MaxBytes, 401 to a missing or bad
// signature or a timestamp outside Tolerance, 409 to a delivery id it has
// already accepted (a replay), 400 to a payload that is not an MLflow
// event, and 200 otherwise, including events it ignores.
type WebhookHandler struct {
	secret    []byte
	models    map[string]bool
	wake      func()
	wakeModel func(string) bool
	clock     canary.Clock
	tolerance time.Duration
	maxBytes  int64
	log       *slog.Logger

	mu   sync.Mutex
	seen map[string]time.Time
}

// WebhookConfig configures NewWebhookHandler.
type WebhookConfig struct {
	// Secret is the webhook's secret in MLflow; required.
	Secret []byte
	// Models are the registered model names whose events wake.
	Models []string
	// Wake is called once per accepted event about a watched model.
	Wake func()
	// WakeModel, when set, replaces Models and Wake: it is called once per
	// accepted event with the model's name, wakes whoever watches it, and
	// reports whether anyone does.
	WakeModel func(name string) bool
	Clock     canary.Clock
	// Tolerance bounds the age (and clock skew) of X-MLflow-Timestamp;
	// DefaultTolerance when zero.
	Tolerance time.Duration
	// MaxBytes bounds the body; DefaultWebhookMaxBytes when zero.
	MaxBytes int64
	Log      *slog.Logger
}

// NewWebhookHandler returns a handler; Secret, Wake and Clock are required.
func NewWebhookHandler(c WebhookConfig) (*WebhookHandler, error) {
	if len(c.Secret) == 0 || (c.Wake == nil && c.WakeModel == nil) || c.Clock == nil {
		return nil, errors.New("mlflow webhook: Secret, Wake (or WakeModel) and Clock are required")
	}
	h := &WebhookHandler{secret: c.Secret, models: map[string]bool{}, wake: c.Wake, wakeModel: c.WakeModel, clock: c.Clock,
		tolerance: c.Tolerance, maxBytes: c.MaxBytes, log: c.Log, seen: map[string]time.Time{}}
	for _, m := range c.Models {
		h.models[m] = true
	}
	if h.tolerance <= 0 {
		h.tolerance = DefaultTolerance
	}
	if h.maxBytes <= 0 {
		h.maxBytes = DefaultWebhookMaxBytes
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		notify.WriteError(w, http.StatusMethodNotAllowed, "want POST, got %s", r.Method)
		return
	}
	if err := notify.CheckContentType(r.Header.Get("Content-Type"), "application/json"); err != nil {
		notify.WriteError(w, http.StatusUnsupportedMediaType, "%s", err)
		return
	}
	body, status, err := notify.ReadBody(w, r, h.maxBytes)
	if err != nil {
		notify.WriteError(w, status, "%s", err)
		return
	}
	id := r.Header.Get(HeaderDeliveryID)
	if status, err := h.authenticate(r.Header, id, body); err != nil {
		h.log.Warn("refused MLflow webhook", "delivery", id, "status", status, "err", err)
		notify.WriteError(w, status, "%s", err)
		return
	}
	ev, err := ParseEvent(body)
	if err != nil {
		notify.WriteError(w, http.StatusBadRequest, "%s", err)
		return
	}
	var matched bool
	switch {
	case !ev.wakes():
	case h.wakeModel != nil:
		matched = h.wakeModel(ev.Data.Name)
	case h.models[ev.Data.Name]:
		matched = true
		h.wake()
	}
	if matched {
		h.log.Info("MLflow event", "event", ev.Name(), "model", ev.Data.Name, "version", ev.Data.Version, "delivery", id)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"event": ev.Name(), "matched": matched})
}

// authenticate checks the signature, the timestamp window and that the
// delivery is new, and records it. It returns the status to refuse with.
func (h *WebhookHandler) authenticate(hdr http.Header, id string, body []byte) (int, error) {
	sig, ts := hdr.Get(HeaderSignature), hdr.Get(HeaderTimestamp)
	if sig == "" || id == "" || ts == "" {
		return http.StatusUnauthorized, fmt.Errorf("unsigned delivery: %s, %s and %s are required; "+
			"give the webhook a secret in MLflow", HeaderSignature, HeaderDeliveryID, HeaderTimestamp)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return http.StatusUnauthorized, fmt.Errorf("%s %q is not a Unix time", HeaderTimestamp, ts)
	}
	now := h.clock.Now()
	at := time.Unix(sec, 0)
	if d := now.Sub(at); d > h.tolerance || d < -h.tolerance {
		return http.StatusUnauthorized, fmt.Errorf("%s %s is more than %s from now; a replay or a skewed clock",
			HeaderTimestamp, at.UTC().Format(time.RFC3339), h.tolerance)
	}
	if !verify(h.secret, sig, id, ts, body) {
		return http.StatusUnauthorized, errors.New("bad signature")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.seen[id]; dup {
		return http.StatusConflict, fmt.Errorf("delivery %s was already received", id)
	}
	h.remember(id, at, now)
	return 0, nil
}

// remember records a delivery id, forgetting those that have aged out of
// the window (their timestamps would be refused anyway). Call with mu held.
func (h *WebhookHandler) remember(id string, at, now time.Time) {
	for k, t := range h.seen {
		if now.Sub(t) > h.tolerance {
			delete(h.seen, k)
		}
	}
	if len(h.seen) >= maxSeenDeliveries {
		oldest, oldestAt := "", now
		for k, t := range h.seen {
			if t.Before(oldestAt) || oldest == "" {
				oldest, oldestAt = k, t
			}
		}
		delete(h.seen, oldest)
	}
	h.seen[id] = at
}
