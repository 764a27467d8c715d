package webhook

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// unread fails the test if the handler reads the body.
type unread struct{ t *testing.T }

func (u unread) Read([]byte) (int, error) {
	u.t.Error("the body was read")
	return 0, io.EOF
}

var deliveries atomic.Int64

func limitedHandler(maxInFlight int, budget int64) *Handler {
	return &Handler{Secret: []byte("s3cret"), Seen: NewDeduper(100, time.Hour, nil), MaxInFlight: maxInFlight,
		MemoryBudget: budget, Log: slog.New(slog.DiscardHandler), Enqueue: func(Event) bool { return true }}
}

func request(h *Handler, body io.Reader, length int64, sig string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/github", body)
	r.ContentLength = length
	r.Header.Set(HeaderEvent, "pull_request_review")
	r.Header.Set(HeaderDelivery, fmt.Sprint("d-", deliveries.Add(1)))
	if sig != "" {
		r.Header.Set(HeaderSignature, sig)
	}
	return r
}

func signed(h *Handler, body string) string {
	return "sha256=" + hex.EncodeToString(Sign(h.Secret, []byte(body)))
}

func TestRefusedBeforeTheBodyIsRead(t *testing.T) {
	h := limitedHandler(0, 0)
	sig := "sha256=" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name   string
		sig    string
		length int64
		want   int
	}{
		{"no signature", "", 100, 401},
		{"not sha256", "sha1=" + strings.Repeat("ab", 20), 100, 401},
		{"not hex", "sha256=" + strings.Repeat("zz", 32), 100, 401},
		{"short MAC", "sha256=abab", 100, 401},
		{"over MaxBody", sig, DefaultMaxBody + 1, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, request(h, unread{t}, tc.length, tc.sig))
			if w.Code != tc.want {
				t.Fatalf("status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tc.want)
			}
		})
	}
}

// holdBody starts a delivery of length bytes (-1: chunked) whose body
// blocks after its first byte, and returns once the handler is reading it;
// finish ends it.
func holdBody(t *testing.T, h *Handler, length int64) (finish func()) {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), request(h, pr, length, "sha256="+strings.Repeat("00", 32)))
	}()
	if _, err := pw.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	return func() { pw.CloseWithError(io.ErrUnexpectedEOF); <-done }
}

func TestOverLimitsAnswers503WithRetryAfter(t *testing.T) {
	small := reviewPayload("approved")
	post := func(h *Handler, body io.Reader, length int64, sig string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, request(h, body, length, sig))
		return w
	}
	t.Run("all slots taken", func(t *testing.T) {
		h := limitedHandler(1, 0)
		finish := holdBody(t, h, -1)
		w := post(h, strings.NewReader(small), int64(len(small)), signed(h, small))
		if w.Code != 503 || w.Header().Get("Retry-After") != RetryAfter {
			t.Fatalf("status %d Retry-After %q, want 503 %s", w.Code, w.Header().Get("Retry-After"), RetryAfter)
		}
		finish()
		if w := post(h, strings.NewReader(small), int64(len(small)), signed(h, small)); w.Code != 202 {
			t.Fatalf("after the slot was freed: %d %s", w.Code, w.Body.String())
		}
	})
	t.Run("budget", func(t *testing.T) {
		h := limitedHandler(0, 4<<20) // large bodies share 3 MiB
		if w := post(h, unread{t}, 3<<20+1, "sha256="+strings.Repeat("00", 32)); w.Code != 413 {
			t.Fatalf("a body larger than large bodies' share: %d, want 413", w.Code)
		}
		finish := holdBody(t, h, 2<<20)
		if w := post(h, unread{t}, 2<<20, "sha256="+strings.Repeat("11", 32)); w.Code != 503 {
			t.Fatalf("a second 2 MiB body: %d, want 503", w.Code)
		}
		if w := post(h, strings.NewReader(small), int64(len(small)), signed(h, small)); w.Code != 202 {
			t.Fatalf("a small body beside a large one: %d %s, want 202", w.Code, w.Body.String())
		}
		finish()
		if w := post(h, strings.NewReader(strings.Repeat(" ", 2<<20)), 2<<20, "sha256="+strings.Repeat("11", 32)); w.Code != 401 {
			t.Fatalf("a 2 MiB body once the budget is free: %d, want it read and refused (401)", w.Code)
		}
	})
}

func TestChunkedBodies(t *testing.T) {
	h := limitedHandler(0, 0)
	h.MaxBody = 100 << 10
	body := reviewPayload("approved") + strings.Repeat(" ", 70<<10) // grows the buffer twice
	w := httptest.NewRecorder()
	h.ServeHTTP(w, request(h, io.MultiReader(strings.NewReader(body)), -1, signed(h, body)))
	if w.Code != 202 {
		t.Fatalf("signed chunked body: %d %s", w.Code, w.Body.String())
	}
	big := strings.Repeat(" ", 100<<10+1)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, request(h, io.MultiReader(strings.NewReader(big)), -1, signed(h, big)))
	if w.Code != 413 {
		t.Fatalf("chunked body over MaxBody: %d, want 413", w.Code)
	}
	if used := h.limiter().used; used != 0 {
		t.Fatalf("%d budget bytes still held after the deliveries", used)
	}
}

// Without NewServer's timeouts (a bare http.Server), BodyTimeout still
// cuts a body sent a byte at a time.
func TestBodyTimeoutOnABareServer(t *testing.T) {
	h := limitedHandler(0, 0)
	h.BodyTimeout = 300 * time.Millisecond
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_, err = io.WriteString(conn, "POST /webhooks/github HTTP/1.1\r\nHost: x\r\n"+HeaderEvent+": pull_request_review\r\n"+
		HeaderDelivery+": d\r\n"+HeaderSignature+": sha256="+strings.Repeat("00", 32)+"\r\nContent-Length: 1000\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 40 {
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer after %v: %v", time.Since(start), err)
	}
	resp.Body.Close()
	if took := time.Since(start); resp.StatusCode != http.StatusRequestTimeout || took > 2*time.Second {
		t.Fatalf("answered %d after %v; want 408 after about %v", resp.StatusCode, took, h.BodyTimeout)
	}
}

func TestNonPositiveLimitsTakeTheDefaults(t *testing.T) {
	h := limitedHandler(-1, -1)
	h.MaxBody, h.BodyTimeout = -1, -time.Second
	body := reviewPayload("approved")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, request(h, strings.NewReader(body), int64(len(body)), signed(h, body)))
	if w.Code != 202 || h.bodyLimit() != DefaultMaxBody {
		t.Fatalf("status %d %s, body limit %d: want 202 and %d", w.Code, w.Body.String(), h.bodyLimit(), DefaultMaxBody)
	}
}
