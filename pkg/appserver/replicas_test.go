package appserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fanout hands every webhook delivery to each live replica, as a load
// balancer in front of two replicas hands it to one of them and a retry
// to the other: here both get everything, the harder case.
type fanout struct {
	mu       sync.Mutex
	handlers map[string]http.Handler
}

func (f *fanout) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	hs := make([]http.Handler, 0, len(f.handlers))
	for _, h := range f.handlers {
		hs = append(hs, h)
	}
	f.mu.Unlock()
	status := http.StatusServiceUnavailable
	for _, h := range hs {
		req := r.Clone(r.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code < 300 {
			status = rec.Code
		}
	}
	w.WriteHeader(status)
}

func (f *fanout) set(name string, h http.Handler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h == nil {
		delete(f.handlers, name)
		return
	}
	f.handlers[name] = h
}

// Two serve replicas, both active on the same installation with no Lease,
// race on every plan: pull-request branches, merges and pushes. The merge
// pinned on the proposed head and the push as a compare-and-swap leave
// every transition committed exactly once. One replica is stopped dead
// mid-run (its context cancelled, its clones left as they were); the
// other finishes every rollout.
func TestTwoActiveServeReplicasCommitEachTransitionOnce(t *testing.T) {
	w := newWorld(t)
	files := map[string]string{}
	var names []string
	for i := range 6 {
		name := fmt.Sprintf("model-%d", i)
		traffic := kserve(name)
		if i%2 == 1 {
			traffic = gateway(name)
		}
		names = append(names, name)
		files[".canarybot/plans/"+name+".yaml"] = planYAML(name, traffic, "setWeight: 20", "setWeight: 50", "setWeight: 100")
	}
	w.repo("acme", "gitops", files)
	w.gh.AddInstallation("acme")
	hooks := &fanout{handlers: map[string]http.Handler{}}
	srv := httptest.NewServer(hooks)
	t.Cleanup(srv.Close)
	w.gh.SetWebhookURL(srv.URL)

	// A short poll, so that both replicas tick every plan all the time.
	killCtx, kill := context.WithCancel(w.ctx)
	a := w.startReplica(killCtx, 200*time.Millisecond, time.Hour)
	b := w.startReplica(w.ctx, 200*time.Millisecond, time.Hour)
	hooks.set("a", a.srv.Handler())
	hooks.set("b", b.srv.Handler())

	eventually(t, "a third of the transitions", 2*time.Minute, func() bool { return total(w.transitions("acme", "gitops")) >= 6 })
	hooks.set("a", nil)
	kill()
	w.srv, w.fleet = b.srv, b.fleet
	w.waitPromoted(map[string][]string{"acme/gitops": names})

	counts := w.transitions("acme", "gitops")
	for key, n := range counts {
		if n != 1 {
			t.Errorf("transition %s committed %d times", key, n)
		}
	}
	if got := total(counts); got != 4*len(names) { // start, two advances, promote
		var keys []string
		for k := range counts {
			keys = append(keys, k)
		}
		t.Errorf("%d transitions, want %d:\n%s", got, 4*len(names), strings.Join(keys, "\n"))
	}
	// The replicas did race: more pull requests were opened, or merges
	// refused, than there were transitions.
	opened, refused := 0, 0
	for _, c := range w.gh.Calls() {
		switch {
		case c.Route == "POST /repos/{owner}/{repo}/pulls" && c.Status < 300:
			opened++
		case c.Route == "PUT /repos/{owner}/{repo}/pulls/{number}/merge" && c.Status >= 300:
			refused++
		}
	}
	t.Logf("%d transitions: %d pull requests opened, %d merges refused", total(counts), opened, refused)
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}
