package fakegithub

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Rate limiting as GitHub does it: each identity (an installation, a user,
// the App's JWT) has an hourly budget of requests; every answered request
// spends one, except a 304 to a conditional request. The window starts at
// an identity's first request and resets an hour later.

const (
	primaryDocURL   = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit"
	secondaryDocURL = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	rateWindow      = time.Hour
	anonymousBucket = "anonymous"
	anonymousLimit  = 60
)

type rateLimiter struct {
	limit         int
	secondaryCode int // 403 or 429
	buckets       map[string]*bucket
	// secondary is how many of the next requests get a secondary limit.
	secondary  int
	retryAfter time.Duration
}

type bucket struct {
	used  int
	reset time.Time
}

func newRateLimiter(o Options) *rateLimiter {
	return &rateLimiter{limit: o.RateLimit, secondaryCode: o.SecondaryLimitStatus,
		buckets: map[string]*bucket{}}
}

// bucketOf names the budget a caller spends: installation tokens share
// their installation's, personal tokens their user's.
func bucketOf(who *identity) string {
	switch who.kind {
	case TokenInstallation:
		return "installation:" + strconv.FormatInt(who.inst, 10)
	case TokenUser:
		return "user:" + strconv.FormatInt(who.user.id, 10)
	default:
		return "app"
	}
}

func (l *rateLimiter) limitOf(name string) int {
	if name == anonymousBucket {
		return anonymousLimit
	}
	return l.limit
}

func (l *rateLimiter) bucket(name string, now time.Time) *bucket {
	b := l.buckets[name]
	if b == nil || !now.Before(b.reset) {
		b = &bucket{reset: now.Add(rateWindow).Truncate(time.Second)}
		l.buckets[name] = b
	}
	return b
}

// admit refuses a request when a secondary limit is injected or the
// bucket is spent.
func (l *rateLimiter) admit(name string, now time.Time) error {
	if l.secondary > 0 {
		l.secondary--
		secs := int(l.retryAfter.Round(time.Second) / time.Second)
		return &apiError{Status: l.secondaryCode, DocURL: secondaryDocURL,
			Message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. " +
				"If you reach out to GitHub Support for help, please include the request ID.",
			Header: http.Header{"Retry-After": {strconv.Itoa(secs)}}}
	}
	b := l.bucket(name, now)
	if b.used < l.limitOf(name) {
		return nil
	}
	msg := "API rate limit exceeded for the App's JSON web token."
	switch kind, id, _ := strings.Cut(name, ":"); kind {
	case "installation":
		msg = fmt.Sprintf("API rate limit exceeded for installation ID %s.", id)
	case "user":
		msg = fmt.Sprintf("API rate limit exceeded for user ID %s.", id)
	}
	return &apiError{Status: http.StatusForbidden, Message: msg, DocURL: primaryDocURL}
}

func (l *rateLimiter) spend(name string, now time.Time) {
	l.bucket(name, now).used++
}

// headers sets GitHub's X-RateLimit-* headers for the bucket.
func (l *rateLimiter) headers(h http.Header, name string, now time.Time) {
	b := l.bucket(name, now)
	limit := l.limitOf(name)
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, limit-b.used)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(b.reset.Unix(), 10))
	h.Set("X-RateLimit-Used", strconv.Itoa(b.used))
	h.Set("X-RateLimit-Resource", "core")
}

// SetBudget changes every identity's hourly budget; requests already spent
// in the current window still count.
func (s *Server) SetBudget(limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits.limit = limit
}

// SecondaryRateLimit makes the next n API requests fail with a secondary
// rate limit (Options.SecondaryLimitStatus, Retry-After: retryAfter).
func (s *Server) SecondaryRateLimit(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits.secondary = n
	s.limits.retryAfter = retryAfter
}

// etag is GitHub-like: a strong hash of the body and of the credentials,
// so a new token sees new ETags.
func etag(token string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(token))
	h.Write([]byte{0})
	h.Write(body)
	return `"` + hex.EncodeToString(h.Sum(nil)) + `"`
}

// etagMatches reports whether an If-None-Match header names tag (weak
// comparison, as RFC 9110 prescribes for If-None-Match).
func etagMatches(header, tag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}
