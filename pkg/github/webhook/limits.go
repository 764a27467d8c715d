package webhook

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Defaults for the Handler's admission limits. Anyone who can reach the
// webhook port can send a body before its signature is known to be wrong,
// so what unverified bodies may hold is bounded.
const (
	// DefaultMaxInFlight bounds the deliveries whose bodies are being read
	// at once.
	DefaultMaxInFlight = 64
	// DefaultMemoryBudget bounds the bytes of delivery bodies held at once.
	DefaultMemoryBudget = 64 << 20
	// DefaultBodyTimeout bounds the time to read one delivery's body.
	DefaultBodyTimeout = 20 * time.Second
	// SmallBody is the size up to which a body may use the whole memory
	// budget; larger ones share three quarters of it, so that a flood of
	// large bodies leaves room for the kilobyte-sized events canarybot acts
	// on.
	SmallBody = 1 << 20
	// RetryAfter is the Retry-After, in seconds, of a 503.
	RetryAfter = "5"
)

// Errors of receiving a body, each answered with its own status.
var (
	errBusy        = errors.New("too many webhook bodies in flight; retry later")
	errTooLarge    = errors.New("payload too large")
	errBodyTimeout = errors.New("body not received in time")
)

// limiter admits bodies: a slot each while it is read, and its bytes
// against a budget while it is held.
type limiter struct {
	slots chan struct{}
	mu    sync.Mutex
	total int64 // the budget
	used  int64
}

func newLimiter(slots int, budget int64) *limiter {
	return &limiter{slots: make(chan struct{}, slots), total: budget}
}

// enter takes a slot, or reports false when all are taken.
func (l *limiter) enter() bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (l *limiter) leave() { <-l.slots }

// largeCap is what bodies over SmallBody may use together.
func (l *limiter) largeCap() int64 { return l.total - l.total/4 }

// reserve adds n bytes held by a body that will hold total bytes, or
// reports false when the budget cannot take them.
func (l *limiter) reserve(n, total int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := l.total
	if total > SmallBody {
		limit = l.largeCap()
	}
	if l.used+n > limit {
		return false
	}
	l.used += n
	return true
}

func (l *limiter) release(n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used -= n
}

// readBody reads r, declared as n bytes (-1 when unknown, as with chunked
// encoding), refusing more than limit. The body's bytes are reserved in l
// before they are allocated; the caller releases held when done with the
// body, also after an error.
func readBody(r io.Reader, n, limit int64, l *limiter) (body []byte, held int64, err error) {
	if n >= 0 {
		if !l.reserve(n, n) {
			return nil, 0, errBusy
		}
		body = make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, n, fmt.Errorf("read %d-byte body: %w", n, err)
		}
		return body, n, nil
	}
	// Unknown length: grow by doubling, reserving each new buffer before
	// it is allocated and releasing the old one after the copy.
	for {
		if len(body) == cap(body) {
			if int64(len(body)) > limit {
				return nil, held, errTooLarge
			}
			next := min(max(2*int64(cap(body)), 64<<10), limit+1)
			if !l.reserve(next, next) {
				return nil, held, errBusy
			}
			grown := make([]byte, len(body), next)
			copy(grown, body)
			l.release(int64(cap(body)))
			held += next - int64(cap(body))
			body = grown
		}
		m, err := r.Read(body[len(body):cap(body)])
		body = body[:len(body)+m]
		switch {
		case errors.Is(err, io.EOF):
			if int64(len(body)) > limit {
				return nil, held, errTooLarge
			}
			return body, held, nil
		case err != nil:
			return nil, held, fmt.Errorf("read body: %w", err)
		}
	}
}

// bodyDeadline cuts the read of the request's body off after d by moving
// the connection's read deadline to the past. It only ever shortens the
// server's own ReadTimeout, never extends it. Call the returned stop before
// the handler returns.
func bodyDeadline(w http.ResponseWriter, d time.Duration) (stop func()) {
	rc := http.NewResponseController(w)
	var mu sync.Mutex
	done := false
	t := time.AfterFunc(d, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			_ = rc.SetReadDeadline(time.Now()) // unsupported (a recorder): nothing to cut
		}
	})
	return func() {
		t.Stop()
		mu.Lock()
		defer mu.Unlock()
		done = true
	}
}
