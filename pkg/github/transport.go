package github

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts GitHub API calls by method, endpoint and status, and
// keeps the rate limit GitHub last reported.
type Metrics struct {
	calls                     *prometheus.CounterVec
	waits                     prometheus.Counter
	remaining, limit, resetAt *prometheus.GaugeVec
}

// NewMetrics registers canarybot_github_api_requests_total,
// canarybot_github_rate_limit_waits_total and the
// canarybot_github_rate_limit_{remaining,limit,reset_timestamp_seconds}
// gauges on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	rateLimit := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "canarybot_github_rate_limit_" + name,
			Help: help + ", by resource (core, graphql, …), from the X-RateLimit headers of the last response; " +
				"with several tokens (App installations), the last response's token."}, []string{"resource"})
	}
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canarybot_github_api_requests_total",
			Help: "GitHub REST API requests by method, endpoint (route template) and HTTP status; 304 answers to conditional requests are counted as such.",
		}, []string{"method", "endpoint", "status"}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canarybot_github_rate_limit_waits_total",
			Help: "Times canarybot waited out a GitHub rate limit (Retry-After or X-RateLimit-Reset) before retrying.",
		}),
		remaining: rateLimit("remaining", "GitHub API requests left in the current rate-limit window"),
		limit:     rateLimit("limit", "GitHub API requests allowed per rate-limit window"),
		resetAt:   rateLimit("reset_timestamp_seconds", "When the current GitHub rate-limit window resets, in Unix seconds"),
	}
	for _, c := range []prometheus.Collector{m.calls, m.waits, m.remaining, m.limit, m.resetAt} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register GitHub API metrics: %w", err)
		}
	}
	return m, nil
}

// Transport is the http.RoundTripper under canarybot's GitHub client. It
// counts every call, revalidates GETs with their ETag so that polling costs
// no rate limit when nothing changed, and waits out short rate limits
// (Retry-After, or X-RateLimit-Reset when the budget is spent). Longer
// limits are returned to the caller as GitHub's response, which go-github
// turns into a RateLimitError; the engine retries on a later tick.
type Transport struct {
	Base    http.RoundTripper
	Metrics *Metrics
	// Cache, when set, holds ETags and bodies of GET responses. It is keyed
	// by the Authorization header as well as the URL: GitHub's ETags depend
	// on the token, so a rotated token starts a fresh cache entry.
	Cache *ETagCache
	// MaxWait is the longest rate-limit wait done inline; 1m when zero.
	MaxWait time.Duration
	// Now and Sleep are the clock; time.Now and a timer when nil.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := t.cacheKey(req)
	for attempt := 0; ; attempt++ {
		r := req
		entry, cached := t.Cache.get(key)
		if cached {
			r = req.Clone(req.Context())
			r.Header.Set("If-None-Match", entry.etag)
		}
		resp, err := t.base().RoundTrip(r)
		if err != nil {
			return nil, err
		}
		t.count(req, resp.StatusCode)
		t.Metrics.rateLimit(resp.Header)
		if wait, ok := t.rateLimitWait(resp); ok && attempt < 2 && replayable(req) {
			_ = resp.Body.Close()
			if err := t.sleep(req.Context(), wait); err != nil {
				return nil, fmt.Errorf("wait %s for GitHub's rate limit: %w", wait, err)
			}
			if req.GetBody != nil {
				if req.Body, err = req.GetBody(); err != nil {
					return nil, fmt.Errorf("replay request body: %w", err)
				}
			}
			continue
		}
		if resp.StatusCode == http.StatusNotModified && cached {
			_ = resp.Body.Close()
			return entry.response(req, resp), nil
		}
		return t.store(key, resp)
	}
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) count(req *http.Request, status int) {
	if t.Metrics != nil {
		t.Metrics.calls.WithLabelValues(req.Method, Endpoint(req.URL.Path), strconv.Itoa(status)).Inc()
	}
}

// rateLimit records the X-RateLimit headers of a response, when it has
// them all.
func (m *Metrics) rateLimit(h http.Header) {
	if m == nil {
		return
	}
	remaining, err1 := strconv.ParseFloat(h.Get("X-RateLimit-Remaining"), 64)
	limit, err2 := strconv.ParseFloat(h.Get("X-RateLimit-Limit"), 64)
	reset, err3 := strconv.ParseFloat(h.Get("X-RateLimit-Reset"), 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	resource := h.Get("X-RateLimit-Resource")
	if resource == "" {
		resource = "core"
	}
	m.remaining.WithLabelValues(resource).Set(remaining)
	m.limit.WithLabelValues(resource).Set(limit)
	m.resetAt.WithLabelValues(resource).Set(reset)
}

func (t *Transport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Transport) sleep(ctx context.Context, d time.Duration) error {
	if t.Metrics != nil {
		t.Metrics.waits.Inc()
	}
	if t.Sleep != nil {
		return t.Sleep(ctx, d)
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// rateLimitWait reads how long GitHub asks the client to wait, and whether
// that is short enough to wait inline.
func (t *Transport) rateLimitWait(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	maxWait := t.MaxWait
	if maxWait <= 0 {
		maxWait = time.Minute
	}
	var wait time.Duration
	if s := resp.Header.Get("Retry-After"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, false
		}
		wait = time.Duration(n) * time.Second
	} else if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
		if err != nil {
			return 0, false
		}
		wait = time.Unix(reset, 0).Sub(t.now()) + time.Second
	} else {
		return 0, false
	}
	return max(wait, 0), wait <= maxWait
}

func replayable(req *http.Request) bool { return req.Body == nil || req.GetBody != nil }

func (t *Transport) cacheKey(req *http.Request) string {
	if t.Cache == nil || req.Method != http.MethodGet {
		return ""
	}
	h := sha256.Sum256([]byte(req.Header.Get("Authorization")))
	return hex.EncodeToString(h[:8]) + " " + req.URL.String()
}

// store remembers a 200 GET response with an ETag, and returns it readable.
func (t *Transport) store(key string, resp *http.Response) (*http.Response, error) {
	etag := resp.Header.Get("ETag")
	if key == "" || resp.StatusCode != http.StatusOK || etag == "" {
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCachedBody+1))
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read GitHub response: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) <= maxCachedBody {
		t.Cache.put(key, &cacheEntry{etag: etag, body: body, header: resp.Header.Clone()})
	}
	return resp, nil
}

const maxCachedBody = 4 << 20

// ETagCache is a bounded map of conditional-request validators.
type ETagCache struct {
	mu    sync.Mutex
	max   int
	m     map[string]*cacheEntry
	order []string
}

// NewETagCache keeps up to n responses.
func NewETagCache(n int) *ETagCache { return &ETagCache{max: n, m: map[string]*cacheEntry{}} }

type cacheEntry struct {
	etag   string
	body   []byte
	header http.Header
}

func (c *ETagCache) get(key string) (*cacheEntry, bool) {
	if c == nil || key == "" {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return e, ok
}

func (c *ETagCache) put(key string, e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok {
		c.order = append(c.order, key)
	}
	c.m[key] = e
	for len(c.order) > c.max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
}

// response rebuilds the cached 200 for a 304, with the fresh rate-limit
// headers of the 304.
func (e *cacheEntry) response(req *http.Request, notModified *http.Response) *http.Response {
	h := e.header.Clone()
	for k, v := range notModified.Header {
		if strings.HasPrefix(k, "X-Ratelimit") {
			h[k] = v
		}
	}
	h.Set("X-From-Cache", "1")
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: notModified.Proto,
		ProtoMajor: notModified.ProtoMajor, ProtoMinor: notModified.ProtoMinor,
		Header: h, Body: io.NopCloser(bytes.NewReader(e.body)), ContentLength: int64(len(e.body)), Request: req,
	}
}

// Endpoint turns a request path into its route template, so that metrics
// have few label values: /repos/acme/gitops/pulls/7 → /repos/{owner}/{repo}/pulls/{n}.
func Endpoint(path string) string {
	prefix := ""
	if rest, ok := strings.CutPrefix(path, "/api/v3/"); ok { // GitHub Enterprise
		prefix, path = "/api/v3", rest
	}
	return prefix + endpoint(path)
}

func endpoint(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		switch {
		case i > 0 && segs[0] == "repos" && i <= 2:
			segs[i] = map[int]string{1: "{owner}", 2: "{repo}"}[i]
		case (s == "ref" || s == "refs" || s == "matching-refs") && i+1 < len(segs) && i > 0 && segs[i-1] == "git":
			segs = append(segs[:i+1], "{ref}")
			return "/" + strings.Join(segs, "/")
		case i > 0 && (segs[i-1] == "collaborators" || segs[i-1] == "users"):
			segs[i] = "{user}"
		case isNumber(s):
			segs[i] = "{n}"
		case len(s) == 40 && isHex(s):
			segs[i] = "{sha}"
		}
	}
	return "/" + strings.Join(segs, "/")
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Waits is the counter of rate-limit waits.
func (m *Metrics) Waits() prometheus.Counter { return m.waits }
