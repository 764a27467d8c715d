package notify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/registry/oci"
)

// distributionBinary is Debian's Docker Distribution 2.8 registry.
const distributionBinary = "/usr/bin/docker-registry"

// syncBuffer is a bytes.Buffer safe for a process and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDistribution runs the real registry on 127.0.0.1 with filesystem
// storage in a temp dir, notifying hookURL with a bearer token, and
// returns its host:port and its log.
func startDistribution(t *testing.T, hookURL, token string) (string, *syncBuffer) {
	t.Helper()
	if _, err := os.Stat(distributionBinary); err != nil {
		t.Fatalf("%s is missing (%v): this test needs Docker Distribution 2.8; install it with\n"+
			"  apt-get install -y --no-install-recommends docker-registry", distributionBinary, err)
	}
	dir := t.TempDir()
	host := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: %s}
http:
  addr: %s
  secret: canarybot-test-secret
notifications:
  endpoints:
    - name: canarybot
      url: %s
      headers:
        Authorization: [Bearer %s]
      timeout: 2s
      threshold: 3
      backoff: 100ms
`, filepath.Join(dir, "data"), host, hookURL, token)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd := exec.Command(distributionBinary, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", distributionBinary, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return host, logs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not answer on %s within 30s: %v\n%s", host, err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A push to the real Docker Distribution registry reaches the handler as
// a notification, which wakes the engine; the watcher then pins what the
// registry holds.
func TestDistributionNotifiesAPush(t *testing.T) {
	const token = "registry-hook-token"
	waker := NewWaker()
	var (
		mu     sync.Mutex
		bodies [][]byte
	)
	handler := &DistributionHandler{Token: token, Wake: waker.Wake}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, DefaultMaxBytes))
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host, logs := startDistribution(t, srv.URL+"/hooks/registry", token)
	repo := host + "/models/demo"
	handler.Repositories = []string{repo}

	ctx := context.Background()
	files := map[string][]byte{"model.safetensors": []byte("weights v1"), "config.json": []byte(`{"v":1}`)}
	digest, err := oci.Push(ctx, repo, "v1.0.0", files)
	if err != nil {
		t.Fatalf("push to Distribution: %v\n%s", err, logs)
	}
	select {
	case <-waker.C():
	case <-time.After(60 * time.Second):
		t.Fatalf("no wake within 60s of the push; the registry's log:\n%s", logs)
	}

	mu.Lock()
	defer mu.Unlock()
	var found *Event
	for _, b := range bodies {
		env, err := ParseEnvelope(b)
		if err != nil {
			t.Fatalf("Distribution sent an envelope the parser rejects: %v\n%s", err, b)
		}
		for _, ev := range env.ManifestPushes() {
			if ev.Target.Digest == digest {
				found = &ev
			}
		}
	}
	if found == nil || found.Target.Repository != "models/demo" || found.Target.Tag != "v1.0.0" {
		t.Fatalf("no manifest push of %s tagged v1.0.0 to models/demo among %d notifications: %+v", digest, len(bodies), found)
	}

	plan := &canary.CanaryPlan{Metadata: canary.ObjectMeta{Name: "demo"}, Spec: canary.PlanSpec{Model: canary.ModelSpec{
		Name: "demo", Source: canary.SourceSpec{OCI: &canary.OCISource{Repository: repo}}}}}
	a, err := oci.NewWatcher().Latest(ctx, plan)
	if err != nil || a == nil || a.URI != "oci://"+repo+"@"+digest || a.Version != "v1.0.0" {
		t.Fatalf("Latest from Distribution = %+v, %v; want %s pinned", a, err, digest)
	}
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("digest %q", digest)
	}
}
