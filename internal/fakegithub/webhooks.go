package fakegithub

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Delivery is one attempt to deliver a webhook event.
type Delivery struct {
	// ID is the X-GitHub-Delivery GUID; a redelivery keeps its ID.
	ID     string
	Event  string // X-GitHub-Event, e.g. "pull_request"
	Action string
	Body   []byte
	// Redelivery marks attempts made by Redeliver.
	Redelivery bool
	// Delivered is false until the attempt finished.
	Delivered bool
	// StatusCode is the receiver's answer; 0 when it gave none.
	StatusCode int
	// Err is why the attempt failed before any answer ("" when answered).
	Err string
	At  time.Time
}

// webhooks delivers events one at a time, in order, on a goroutine of
// its own, so a slow receiver never holds up the API.
type webhooks struct {
	opts   Options
	now    func() time.Time
	log    *slog.Logger
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	url     string
	all     []*Delivery
	queue   []*Delivery
	pending int           // queued plus in flight
	wake    chan struct{} // signals the worker (capacity 1)
	changed chan struct{} // closed and replaced after each attempt
}

func newWebhooks(opts Options, now func() time.Time, log *slog.Logger) *webhooks {
	ctx, cancel := context.WithCancel(context.Background())
	w := &webhooks{opts: opts, now: now, log: log, url: opts.WebhookURL, ctx: ctx, cancel: cancel,
		client: &http.Client{Timeout: 10 * time.Second}, done: make(chan struct{}),
		wake: make(chan struct{}, 1), changed: make(chan struct{})}
	go w.work()
	return w
}

func (w *webhooks) close() {
	w.cancel()
	<-w.done
}

// enqueue schedules an attempt.
func (w *webhooks) enqueue(d *Delivery) {
	w.mu.Lock()
	w.all = append(w.all, d)
	w.queue = append(w.queue, d)
	w.pending++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *webhooks) work() {
	defer close(w.done)
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			w.mu.Unlock()
			select {
			case <-w.wake:
				continue
			case <-w.ctx.Done():
				return
			}
		}
		d := w.queue[0]
		w.queue = w.queue[1:]
		url := w.url
		w.mu.Unlock()

		status, errText := w.post(url, d)

		w.mu.Lock()
		d.Delivered, d.StatusCode, d.Err, d.At = true, status, errText, w.now()
		w.pending--
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}
}

// post sends d to url with GitHub's headers and returns the receiver's
// status, or why there was none.
func (w *webhooks) post(url string, d *Delivery) (int, string) {
	if url == "" {
		return 0, "no webhook URL configured"
	}
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		return 0, err.Error()
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "GitHub-Hookshot/fake7d1")
	h.Set("X-GitHub-Event", d.Event)
	h.Set("X-GitHub-Delivery", d.ID)
	h.Set("X-GitHub-Hook-ID", strconv.FormatInt(w.opts.HookID, 10))
	h.Set("X-GitHub-Hook-Installation-Target-ID", strconv.FormatInt(w.opts.AppID, 10))
	h.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	if w.opts.WebhookSecret != "" {
		h.Set("X-Hub-Signature", "sha1="+sign(sha1.New, w.opts.WebhookSecret, d.Body))
		h.Set("X-Hub-Signature-256", "sha256="+sign(sha256.New, w.opts.WebhookSecret, d.Body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		w.log.Warn("webhook delivery failed", "event", d.Event, "delivery", d.ID, "err", err)
		return 0, err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, ""
}

func sign(h func() hash.Hash, secret string, body []byte) string {
	m := hmac.New(h, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// SetWebhookURL points deliveries at url from the next attempt on, for a
// receiver that starts after the server.
func (s *Server) SetWebhookURL(url string) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.url = url
}

// Deliveries returns every delivery attempt so far, in order, as copies.
func (s *Server) Deliveries() []Delivery {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	out := make([]Delivery, 0, len(s.hooks.all))
	for _, d := range s.hooks.all {
		c := *d
		c.Body = append([]byte(nil), d.Body...)
		out = append(out, c)
	}
	return out
}

// Redeliver sends delivery id again with the same GUID and body, as
// GitHub's "Redeliver" button does.
func (s *Server) Redeliver(id string) error {
	s.hooks.mu.Lock()
	var orig *Delivery
	for _, d := range s.hooks.all {
		if d.ID == id && !d.Redelivery {
			orig = d
			break
		}
	}
	s.hooks.mu.Unlock()
	if orig == nil {
		return fmt.Errorf("no delivery %q", id)
	}
	s.hooks.enqueue(&Delivery{ID: orig.ID, Event: orig.Event, Action: orig.Action, Body: orig.Body, Redelivery: true})
	return nil
}

// WaitDeliveries waits until every queued delivery has been attempted.
func (s *Server) WaitDeliveries(ctx context.Context) error {
	for {
		s.hooks.mu.Lock()
		pending, changed := s.hooks.pending, s.hooks.changed
		s.hooks.mu.Unlock()
		if pending == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d webhook deliveries: %w", pending, ctx.Err())
		}
	}
}

// emit queues an event delivery; payload is marshalled at once.
func (s *Server) emit(event, action string, payload any) {
	body, err := json.Marshal(payload)
	if err != nil {
		s.log.Error("marshal webhook payload", "event", event, "err", err)
		return
	}
	s.hooks.enqueue(&Delivery{ID: uuid4(), Event: event, Action: action, Body: body})
}

// uuid4 is a random RFC 9562 version 4 UUID.
func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b[:])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}
