package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/canarybot/canarybot/pkg/argocd/argocdtest"
	"github.com/canarybot/canarybot/pkg/canary"
	notifications "github.com/canarybot/canarybot/pkg/notify"
)

// `reconcile --once`, run three times over a repository whose config
// sends every event to a signed webhook, driving every plan or one
// (--plan): the first run starts the cursor before its own transition,
// and the receiver gets each transition's event once, in order; the
// cursor is a ref on the remote.
func TestReconcileSendsNotifications(t *testing.T) {
	for name, extra := range map[string][]string{"fleet": nil, "one plan": {"--plan", ".canarybot/plans/fraud.yaml"}} {
		t.Run(name, func(t *testing.T) { testReconcileSendsNotifications(t, extra) })
	}
}

func testReconcileSendsNotifications(t *testing.T, extra []string) {
	const secret = "cmd-test-secret-42"
	var mu sync.Mutex
	var got []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !notifications.Verify([]byte(secret), body, r.Header.Get(notifications.HeaderSignature)) {
			t.Errorf("bad signature on %s", r.Header.Get(notifications.HeaderDelivery))
		}
		var p notifications.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Error(err)
		}
		mu.Lock()
		got = append(got, p.Event+" "+p.Plan)
		mu.Unlock()
	}))
	defer hook.Close()
	config := `apiVersion: canarybot.dev/v1alpha1
kind: RepositoryConfig
spec:
  notifications:
  - name: hooks
    webhook: {url: "` + hook.URL + `/hook", secretFrom: {env: CANARYBOT_NOTIFY_CMD_TEST_HOOK_SECRET}}
`
	bare := gitopsRemote(t, map[string]string{canary.ConfigPath: config,
		".canarybot/plans/fraud.yaml": fleetPlan("fraud-detector", "{mode: kserve, kserve: {inferenceService: fraud-detector}}",
			"manifests/overlays/fraud-detector")})
	argo := &argocdtest.Server{Head: func(string) (string, error) {
		out, err := exec.Command("git", "-C", bare, "rev-parse", "main").Output()
		return strings.TrimSpace(string(out)), err
	}}
	if err := argo.Start(); err != nil {
		t.Fatal(err)
	}
	defer argo.Stop()
	args := []string{"reconcile", "--once", "--repo", bare, "--dir", filepath.Join(t.TempDir(), "clones"),
		"--prometheus", "http://127.0.0.1:1", "--argocd-server", argo.Addr(), "--argocd-plaintext", "--log-level", "debug"}
	if extra != nil {
		args = append(append(args, extra...), "--dir", filepath.Join(t.TempDir(), "clone")) // --dir is the clone itself
	}
	var logs string
	for range 3 { // start, advance to 100%, promote
		out, stderr, err := runBinary(t, []string{"CANARYBOT_NOTIFY_CMD_TEST_HOOK_SECRET=" + secret}, args...)
		if err != nil {
			t.Fatalf("reconcile --once: %v\n%s%s", err, out, stderr)
		}
		logs += stderr
	}
	want := []string{"started fraud-detector", "advanced fraud-detector", "promoted fraud-detector"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the receiver got %v, want %v\n%s", got, want, logs)
	}
	if cursor, head := gitRun(t, bare, "rev-parse", notifications.CursorRef("hooks")), gitRun(t, bare, "rev-parse", "main"); cursor != head {
		t.Errorf("cursor %s, want the head %s", cursor, head)
	}
	if strings.Contains(logs, secret) {
		t.Error("the log shows the webhook secret")
	}
}
