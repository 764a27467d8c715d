package bench

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/github/webhook"
)

// AckStats are webhook answer latencies as the sender sees them.
type AckStats struct {
	N             int
	P50, P99, Max time.Duration
	Non2xx        int
}

// WebhookResult compares canarybot's receiver with a baseline handler
// that answers 202 without reading, verifying or queueing anything: the
// floor of the same HTTP stack on the same machine, measured in the same run.
type WebhookResult struct {
	Bot, Baseline AckStats
}

// WebhookAck sends n signed pull_request_review deliveries (the size of
// GitHub's, about 20 KB) with the given concurrency to each handler over
// loopback HTTP, and measures the time to each answer.
func WebhookAck(ctx context.Context, n, concurrency int) (WebhookResult, error) {
	secret := []byte("bench-secret")
	body := reviewDelivery()
	q := webhook.NewQueue(n + 1)
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go q.Run(qctx, func(context.Context, webhook.Event) {})
	bot := &webhook.Handler{Secret: secret, Seen: webhook.NewDeduper(2*n, time.Hour, nil), Enqueue: q.Enqueue,
		Log: slog.New(slog.DiscardHandler)}
	base := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
	var res WebhookResult
	var err error
	if res.Baseline, err = fire(ctx, base, secret, body, n, concurrency, "base"); err != nil {
		return res, err
	}
	if res.Bot, err = fire(ctx, bot, secret, body, n, concurrency, "bot"); err != nil {
		return res, err
	}
	return res, nil
}

func fire(ctx context.Context, h http.Handler, secret, body []byte, n, concurrency int, prefix string) (AckStats, error) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	sig := "sha256=" + hex.EncodeToString(webhook.Sign(secret, body))
	lat := make([]time.Duration, n)
	codes := make([]int, n)
	var wg sync.WaitGroup
	next := make(chan int)
	errc := make(chan error, concurrency)
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, bytes.NewReader(body))
				req.Header.Set(webhook.HeaderEvent, "pull_request_review")
				req.Header.Set(webhook.HeaderDelivery, prefix+"-"+strconv.Itoa(i))
				req.Header.Set(webhook.HeaderSignature, sig)
				start := time.Now()
				resp, err := srv.Client().Do(req)
				if err != nil {
					errc <- fmt.Errorf("delivery %d: %w", i, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				lat[i], codes[i] = time.Since(start), resp.StatusCode
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case err := <-errc:
			close(next)
			wg.Wait()
			return AckStats{}, err
		}
	}
	close(next)
	wg.Wait()
	st := AckStats{N: n}
	for _, c := range codes {
		if c < 200 || c > 299 {
			st.Non2xx++
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	st.P50, st.P99, st.Max = lat[n/2], lat[min(n-1, n*99/100)], lat[n-1]
	return st, nil
}

// reviewDelivery is a pull_request_review "submitted" payload padded to
// the size GitHub sends (repository and user objects make it ~20 KB).
func reviewDelivery() []byte {
	pad := bytes.Repeat([]byte("x"), 18<<10)
	return []byte(`{"action":"submitted","review":{"state":"approved","body":"` + string(pad) + `"},` +
		`"pull_request":{"number":7,"head":{"ref":"canarybot/qwen/5f2b9c0d1e3a"}},` +
		`"repository":{"name":"gitops","owner":{"login":"acme"}},"installation":{"id":42},"sender":{"login":"ana"}}`)
}

// RenderWebhook prints the ack table and the 10-second target.
func RenderWebhook(w io.Writer, r WebhookResult) bool {
	fmt.Fprintf(w, "\nWebhook acknowledgement (%d signed deliveries each, loopback HTTP)\n", r.Bot.N)
	fmt.Fprintf(w, "%-34s %10s %10s %10s %8s\n", "receiver", "p50", "p99", "max", "non-2xx")
	for _, row := range []struct {
		name string
		s    AckStats
	}{{"canarybot (verify, dedup, queue)", r.Bot}, {"baseline (202, nothing else)", r.Baseline}} {
		fmt.Fprintf(w, "%-34s %10s %10s %10s %8d\n", row.name, row.s.P50.Round(time.Microsecond),
			row.s.P99.Round(time.Microsecond), row.s.Max.Round(time.Microsecond), row.s.Non2xx)
	}
	ratio := float64(r.Bot.P99) / float64(max(r.Baseline.P99, time.Microsecond))
	ok := r.Bot.P99 < 10*time.Second && r.Bot.Non2xx == 0
	fmt.Fprintf(w, "p99 ratio canarybot/baseline: %.2f×   target p99 < 10s (GitHub's limit): %s\n", ratio, passFail(ok))
	return ok
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
