package notify

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestWakerCoalescesAndNeverBlocks(t *testing.T) {
	w := NewWaker()
	for i := 0; i < 5; i++ {
		w.Wake()
	}
	select {
	case <-w.C():
	default:
		t.Fatal("no wake pending after Wake")
	}
	select {
	case <-w.C():
		t.Fatal("five wakes before a look must coalesce into one")
	default:
	}
}

func TestNextDelay(t *testing.T) {
	const i = 10 * time.Second
	cases := []struct {
		name     string
		max      time.Duration
		jitter   float64
		failures int
		r        float64
		want     time.Duration
	}{
		{"success waits the interval", 0, 0, 0, 0.5, i},
		{"one failure doubles", 0, 0, 1, 0.5, 2 * i},
		{"three failures", 0, 0, 3, 0.5, 8 * i},
		{"default cap is 16 intervals", 0, 0, 30, 0.5, 16 * i},
		{"explicit cap", 25 * time.Second, 0, 2, 0.5, 25 * time.Second},
		{"jitter low end", 0, 0.2, 0, 0, 8 * time.Second},
		{"jitter high end", 0, 0.2, 0, 1, 12 * time.Second},
		{"jitter applies to backoff", 0, 0.5, 1, 0, i},
		{"jitter is clamped below 1", 0, 5, 0, 0, 100 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextDelay(i, tc.max, tc.jitter, tc.failures, tc.r); got != tc.want {
				t.Errorf("NextDelay = %s, want %s", got, tc.want)
			}
		})
	}
}

// instantClock fires every After at once and records the waits.
type instantClock struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (c *instantClock) Now() time.Time { return time.Unix(0, 0) }
func (c *instantClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Unix(0, 0)
	return ch
}

func TestPollerBacksOffAndWakesOnChange(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		changed bool
		err     error
	}
	script := []result{{err: errors.New("503")}, {err: errors.New("503")}, {changed: true}, {}, {changed: true}}
	calls, wakes := 0, 0
	clock := &instantClock{}
	p := &Poller{
		Interval: time.Minute, Jitter: 0.1, Rand: func() float64 { return 0.5 }, Clock: clock,
		Wake: func() { wakes++ },
		Check: func(context.Context) (bool, error) {
			r := script[calls]
			calls++
			if calls == len(script) {
				cancel()
			}
			return r.changed, r.err
		},
	}
	if err := p.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	want := []time.Duration{2 * time.Minute, 4 * time.Minute, time.Minute, time.Minute}
	if len(clock.waits) != len(want) {
		t.Fatalf("waits = %v, want %v", clock.waits, want)
	}
	for i := range want {
		if clock.waits[i] != want[i] {
			t.Errorf("wait %d = %s, want %s", i, clock.waits[i], want[i])
		}
	}
	if wakes != 1 {
		t.Errorf("wakes = %d, want 1: the change seen as ctx ended is dropped with the run", wakes)
	}
}

func TestPollerNeedsItsParts(t *testing.T) {
	if err := (&Poller{}).Run(context.Background()); err == nil {
		t.Fatal("an empty poller ran")
	}
}

type fakeSource struct {
	LatestFn func(ctx context.Context, p *canary.CanaryPlan) (*canary.Artifact, error)
}

func (f fakeSource) Latest(ctx context.Context, p *canary.CanaryPlan) (*canary.Artifact, error) {
	return f.LatestFn(ctx, p)
}

func TestLatestChanged(t *testing.T) {
	answers := []*canary.Artifact{nil, {URI: "oci://r.io/m@sha256:1"}, {URI: "oci://r.io/m@sha256:1"}, {URI: "oci://r.io/m@sha256:2"}, nil}
	i := 0
	src := fakeSource{LatestFn: func(context.Context, *canary.CanaryPlan) (*canary.Artifact, error) {
		a := answers[i]
		i++
		return a, nil
	}}
	check := LatestChanged(src, func(context.Context) (*canary.CanaryPlan, error) { return &canary.CanaryPlan{}, nil })
	var got []bool
	for range answers {
		c, err := check(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	want := []bool{false, true, false, true, true}
	for j := range want {
		if got[j] != want[j] {
			t.Fatalf("changes = %v, want %v", got, want)
		}
	}
	failing := LatestChanged(src, func(context.Context) (*canary.CanaryPlan, error) { return nil, errors.New("git down") })
	if _, err := failing(context.Background()); err == nil {
		t.Fatal("a plan error was swallowed")
	}
}

const pushEnvelope = `{"events":[
 {"id":"a","action":"push","target":{"mediaType":"application/octet-stream","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","repository":"models/demo"}},
 {"id":"b","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","repository":"models/demo","tag":"v2.0.0"},"request":{"host":"127.0.0.1:5000"},"extra":{"ignored":true}},
 {"id":"c","action":"pull","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","repository":"models/demo","tag":"v2.0.0"}}
]}`

func TestDistributionHandler(t *testing.T) {
	other := strings.ReplaceAll(pushEnvelope, "models/demo", "models/other")
	cases := []struct {
		name, method, ctype, auth, body string
		status                          int
		woke                            bool
		say                             string
	}{
		{name: "manifest push wakes", body: pushEnvelope, status: 200, woke: true, say: `"matched":1`},
		{name: "parameters in the content type", ctype: EventsMediaType + "; charset=utf-8", body: pushEnvelope, status: 200, woke: true},
		{name: "plain JSON is accepted", ctype: "application/json", body: pushEnvelope, status: 200, woke: true},
		{name: "another repository does not wake", body: other, status: 200, say: `"matched":0`},
		{name: "blob-only push does not wake", body: `{"events":[{"action":"push","target":{"mediaType":"application/octet-stream","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","repository":"models/demo"}}]}`, status: 200},
		{name: "empty batch", body: `{"events":[]}`, status: 200, say: `"events":0`},
		{name: "GET", method: http.MethodGet, status: 405, say: "want POST"},
		{name: "wrong token", auth: "Bearer nope", body: pushEnvelope, status: 401, say: "bearer token"},
		{name: "no token", auth: "-", body: pushEnvelope, status: 401},
		{name: "wrong content type", ctype: "text/plain", body: pushEnvelope, status: 415, say: "want " + EventsMediaType},
		{name: "malformed JSON", body: `{"events":[{"action":`, status: 400, say: "malformed notification envelope"},
		{name: "no events array", body: `{"event":[]}`, status: 400, say: `no \"events\" array`},
		{name: "events not an array", body: `{"events":{}}`, status: 400, say: "malformed"},
		{name: "trailing data", body: `{"events":[]} {}`, status: 400, say: "data after"},
		{name: "oversized", body: `{"events":[],"pad":"` + strings.Repeat("x", 4096) + `"}`, status: 413, say: "over 1024 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			woke := 0
			h := &DistributionHandler{Repositories: []string{"127.0.0.1:5000/models/demo"}, Token: "s3cret",
				MaxBytes: 1024, Wake: func() { woke++ }}
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, "/hooks/registry", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", EventsMediaType)
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			switch tc.auth {
			case "":
				req.Header.Set("Authorization", "Bearer s3cret")
			case "-":
			default:
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tc.status {
				t.Fatalf("status = %d (%s), want %d", rec.Code, body, tc.status)
			}
			if (woke == 1) != tc.woke || woke > 1 {
				t.Errorf("woke %d times, want woke=%v", woke, tc.woke)
			}
			if !strings.Contains(string(body), tc.say) {
				t.Errorf("body %q does not say %q", body, tc.say)
			}
		})
	}
}

func TestManifestPushesFiltersEvents(t *testing.T) {
	env, err := ParseEnvelope([]byte(`{"events":[
	 {"action":"push","target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:abc","repository":"m/x","tag":"v1"}},
	 {"action":"push","target":{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:` + strings.Repeat("3", 64) + `","repository":"m/x"}},
	 {"action":"push","target":{"digest":"sha256:` + strings.Repeat("4", 64) + `","repository":"M/X","tag":"v1"}},
	 {"action":"delete","target":{"digest":"sha256:` + strings.Repeat("5", 64) + `","repository":"m/x","tag":"v1"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got := env.ManifestPushes()
	if len(got) != 1 || got[0].Target.Digest != "sha256:"+strings.Repeat("3", 64) {
		t.Fatalf("ManifestPushes = %+v, want only the well-formed index push", got)
	}
}

func TestRepositoryPath(t *testing.T) {
	for in, want := range map[string]string{
		"ghcr.io/acme/qwen": "acme/qwen", "127.0.0.1:5000/models/demo": "models/demo",
		"localhost/x": "x", "acme/qwen": "acme/qwen", "qwen": "qwen",
	} {
		if got := RepositoryPath(in); got != want {
			t.Errorf("RepositoryPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// With WakeRepository, every pushed repository of a batch is offered once
// to the caller (a fleet routing to the plans that watch it).
func TestDistributionHandlerRoutesByRepository(t *testing.T) {
	batch := strings.Replace(pushEnvelope, `"id":"a"`, `"id":"a0"`, 1)
	batch = strings.Replace(batch, `]}`, `,{"id":"d","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","repository":"models/other","tag":"v1"}}]}`, 1)
	offered := map[string]int{}
	h := &DistributionHandler{Token: "s3cret", WakeRepository: func(path string) bool {
		offered[path]++
		return path == "models/demo"
	}}
	req := httptest.NewRequest(http.MethodPost, "/hooks/registry", strings.NewReader(batch))
	req.Header.Set("Content-Type", EventsMediaType)
	req.Header.Set("Authorization", "Bearer s3cret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"matched":1`) {
		t.Errorf("answer %d %s, want 200 with one matched push", rec.Code, rec.Body)
	}
	if offered["models/demo"] != 1 || offered["models/other"] != 1 || len(offered) != 2 {
		t.Errorf("offered %v, want each pushed repository once", offered)
	}
}
