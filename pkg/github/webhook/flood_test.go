package webhook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Timeouts of the server under attack, short to keep the test quick.
const (
	floodHeaderTimeout = time.Second
	floodReadTimeout   = 2 * time.Second
	// How long after its timeout a slow sender may still hold its
	// connection (scheduling on a loaded machine).
	floodSlack = 2 * time.Second
)

// TestFloodIsBounded starts the real handler behind NewServer (with short
// timeouts) and, at once, 50 senders of maximum-size bodies that are not
// signed with the secret (most with a well-formed forged signature, so
// their bodies must be read to be refused), 25 senders trickling their
// headers and 25 trickling their bodies a byte every 250 ms. Meanwhile it
// sends signed deliveries, which must all be queued, samples heap in use,
// which must stay under the memory budget plus 64 MiB, and checks that
// every slow sender is cut off by the read timeouts.
func TestFloodIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a server for a few seconds")
	}
	const budget = DefaultMemoryBudget
	// GOGC alone lets the heap reach twice what is live before a
	// collection; the memory limit makes garbage go promptly, so that heap
	// in use measures what the handler holds.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(budget + 32<<20))
	var queued atomic.Int64
	h := &Handler{Secret: []byte("s3cret"), Seen: NewDeduper(10000, time.Hour, nil),
		Log:     slog.New(slog.DiscardHandler),
		Enqueue: func(Event) bool { queued.Add(1); return true }}
	srv := NewServer(h)
	srv.ReadHeaderTimeout, srv.ReadTimeout = floodHeaderTimeout, floodReadTimeout
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "http://" + ln.Addr().String() + "/webhooks/github"

	runtime.GC()
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	peak := sampleMemory(ctx)
	var wg sync.WaitGroup
	statuses := floodMaxBodies(ctx, &wg, url, 50)
	slow := make([]time.Duration, 50)
	for i := range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slow[i] = slowSender(ln.Addr().String(), i%2 == 0)
		}()
	}
	signed := sendSigned(ctx, t, url, h.Secret)
	wg.Wait()
	heap, rss := peak()

	t.Logf("flood answers %v; %d signed deliveries queued; peak heap in use %d MiB, VmRSS %d MiB",
		statuses.snapshot(), signed, heap>>20, rss>>20)
	if signed < 10 || queued.Load() != int64(signed) {
		t.Errorf("%d signed deliveries answered 202, %d queued; want every one of at least 10", signed, queued.Load())
	}
	if limit := uint64(budget + 64<<20); heap > limit {
		t.Errorf("heap in use reached %d MiB during the flood, over the %d MiB budget plus 64 MiB", heap>>20, budget>>20)
	}
	got := statuses.snapshot()
	if got[http.StatusServiceUnavailable] == 0 || got[http.StatusUnauthorized] == 0 {
		t.Errorf("flood answers %v: want some refused as over budget (503) and some read and refused (401)", got)
	}
	var longest [2]time.Duration // trickling headers, bodies
	for i, d := range slow {
		limit := floodReadTimeout
		if i%2 == 0 {
			limit = floodHeaderTimeout
		}
		longest[i%2] = max(longest[i%2], d)
		if d > limit+floodSlack {
			t.Errorf("slow sender %d (headers: %v) held its connection for %v; want it cut after %v", i, i%2 == 0, d, limit)
		}
	}
	t.Logf("slow senders cut after at most %v (headers) and %v (bodies)", longest[0].Round(time.Millisecond), longest[1].Round(time.Millisecond))
}

// sampleMemory samples heap in use and VmRSS every 20 ms until ctx ends;
// peak waits for that and returns the highest of each.
func sampleMemory(ctx context.Context) (peak func() (heap, rss uint64)) {
	done := make(chan struct{})
	var heap, rss uint64
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			heap, rss = max(heap, ms.HeapInuse), max(rss, vmRSS())
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() (uint64, uint64) { <-done; return heap, rss }
}

// vmRSS is the process's resident memory in bytes; 0 where /proc is not.
func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

type statusCount struct {
	mu sync.Mutex
	m  map[int]int
}

func (s *statusCount) add(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[code]++
}

func (s *statusCount) snapshot() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]int, len(s.m))
	for k, v := range s.m {
		out[k] = v
	}
	return out
}

// filler yields n bytes of 'x' without holding them.
type filler struct{ n int64 }

func (f *filler) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), f.n)]
	for i := range p {
		p[i] = 'x'
	}
	f.n -= int64(len(p))
	return len(p), nil
}

// floodMaxBodies runs n senders of DefaultMaxBody-byte bodies until ctx
// ends, each sending again once answered. One in five has no signature;
// the others a well-formed one computed with no secret. Answers are
// counted by status; -1 counts a connection the server cut mid-body.
func floodMaxBodies(ctx context.Context, wg *sync.WaitGroup, url string, n int) *statusCount {
	counts := &statusCount{m: map[int]int{}}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	forged := "sha256=" + strings.Repeat("0", 64)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ctx.Err() == nil; j++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, &filler{n: DefaultMaxBody})
				req.ContentLength = DefaultMaxBody
				req.Header.Set(HeaderEvent, "pull_request_review")
				req.Header.Set(HeaderDelivery, fmt.Sprintf("flood-%d-%d", i, j))
				if i%5 != 0 {
					req.Header.Set(HeaderSignature, forged)
				}
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						counts.add(-1)
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				counts.add(resp.StatusCode)
			}
		}()
	}
	return counts
}

// slowSender opens a connection and trickles a delivery, a byte every
// 250 ms: its headers when headers is set, else its body after
// well-formed headers with a forged signature. It returns how long the
// server let the connection live (answered or closed).
func slowSender(addr string, headers bool) time.Duration {
	start := time.Now()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0
	}
	defer conn.Close()
	head := "POST /webhooks/github HTTP/1.1\r\nHost: canarybot\r\n"
	if !headers {
		head += HeaderEvent + ": pull_request_review\r\n" + HeaderDelivery + ": slow\r\n" +
			HeaderSignature + ": sha256=" + strings.Repeat("0", 64) + "\r\nContent-Length: 65536\r\n\r\n"
	}
	if _, err := io.WriteString(conn, head); err != nil {
		return time.Since(start)
	}
	cut := make(chan struct{})
	go func() {
		defer close(cut)
		_, _ = bufio.NewReader(conn).ReadByte() // an answer (408) or EOF
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.After(15 * time.Second); ; {
		select {
		case <-cut:
			return time.Since(start)
		case <-deadline:
			return time.Since(start)
		case <-tick.C:
			_, _ = conn.Write([]byte("a"))
		}
	}
}

// sendSigned sends a signed review delivery every 50 ms until ctx ends,
// failing t on any answer but 202; it returns how many were answered.
func sendSigned(ctx context.Context, t *testing.T, url string, secret []byte) int {
	body := []byte(reviewPayload("approved"))
	sig := "sha256=" + hex.EncodeToString(Sign(secret, body))
	client := &http.Client{Timeout: 10 * time.Second}
	n := 0
	for i := 0; ctx.Err() == nil; i++ {
		time.Sleep(50 * time.Millisecond)
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set(HeaderEvent, "pull_request_review")
		req.Header.Set(HeaderDelivery, "signed-"+strconv.Itoa(i))
		req.Header.Set(HeaderSignature, sig)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("signed delivery %d: %v", i, err)
			continue
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("signed delivery %d: %d %s after %v, want 202", i, resp.StatusCode, bytes.TrimSpace(msg), time.Since(start))
			continue
		}
		n++
	}
	return n
}
