//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/canarybot/canarybot/internal/e2e/traffic"
	"github.com/canarybot/canarybot/pkg/canary"
)

// The Lease of TestLeaderElectionTakesOverAfterKill9: short, so that the
// takeover is quick; the flags' defaults are 15s, 10s and 2s.
const (
	leaseNamespace = "canarybot"
	leaseName      = "canarybot"
	leaseDuration  = 4 * time.Second
	// takeoverSlack covers the standby's retry period and its jitter
	// (500ms × 1.2, twice: seeing the last renewal, then trying after the
	// expiry: 1.2s), the kube-apiserver's round trips on a loaded machine
	// and this test's 100ms polling of the Lease; it stays well under a
	// second lease duration.
	takeoverSlack = 3 * time.Second
)

// TestLeaderElectionTakesOverAfterKill9 runs two `canarybot reconcile
// --leader-elect` processes on one GitOps repo and plan against the real
// kube-apiserver: exactly one holds the Lease and drives the rollout; it is
// killed with SIGKILL after its first transition; the standby takes the
// Lease over within one lease duration (plus a small slack) and finishes
// the rollout, every transition committed exactly once; SIGTERM to the new
// leader releases the Lease at once.
func TestLeaderElectionTakesOverAfterKill9(t *testing.T) {
	bin, err := filepath.Abs("../../bin/canarybot")
	if err != nil || !isExecutable(bin) {
		t.Fatalf("%s missing: `make e2e` builds it first (make build)", bin)
	}
	r, _ := newRollout(t, canary.ModeGateway)
	kubeconfig := leaseServiceAccount(t, r)
	lease := watchLease(t, r)
	v2 := r.push("2.0.0")
	r.applier.Register(v2.Location(), traffic.Model{Tag: "2.0.0", Behaviour: good()})
	bots := map[string]*bot{}
	for _, id := range []string{"bot-a", "bot-b"} {
		bots[id] = startLeaderBot(t, r, bin, kubeconfig, id)
	}
	r.eventually("a holder of the Lease", time.Minute, func() bool { return lease.holder() != "" })
	leader := bots[lease.holder()]
	standby := bots[otherBot(lease.holder())]
	r.eventually("the leader's first transition", 2*time.Minute, func() bool { return len(r.transitions()) >= 1 })
	if got := lease.holders(); len(got) != 1 || got[0] != leader.id {
		t.Fatalf("holders of the Lease so far: %v, want only %s", got, leader.id)
	}
	if log := standby.log(t); !strings.Contains(log, "waiting for the lease") || strings.Contains(log, "acquired the lease") {
		t.Fatalf("standby %s should be waiting, not leading:\n%s", standby.id, log)
	}
	if !strings.Contains(leader.log(t), "acquired the lease") {
		t.Fatalf("leader %s did not log acquiring the lease:\n%s", leader.id, leader.log(t))
	}

	killed := leader.signal(t, syscall.SIGKILL)
	_ = leader.cmd.Wait()
	t.Logf("killed the leader %s with SIGKILL after %v", leader.id, r.transitions())
	r.eventually("the standby holding the Lease", 30*time.Second, func() bool { return lease.holder() == standby.id })
	takeover := lease.since(standby.id).Sub(killed)
	t.Logf("standby %s took the Lease over %s after the kill (lease duration %s)", standby.id, takeover.Round(time.Millisecond), leaseDuration)
	if takeover > leaseDuration+takeoverSlack {
		t.Errorf("takeover took %s, want at most the lease duration %s + %s", takeover, leaseDuration, takeoverSlack)
	}

	r.eventually("v2 promoted by the standby", 4*time.Minute, func() bool {
		st := r.stateFromGit()
		return st.Status.Phase == canary.PhasePromoted && st.Status.Stable.URI == v2.URI
	})
	got := strings.Join(r.transitions(), " ")
	if want := "start/0 advance/1 advance/2 promote/2"; got != want {
		t.Fatalf("transitions in Git: %s, want each exactly once: %s", got, want)
	}

	stopped := standby.signal(t, syscall.SIGTERM)
	if err := standby.cmd.Wait(); err != nil {
		t.Errorf("the leader exited with %v after SIGTERM, want 0:\n%s", err, standby.log(t))
	}
	r.eventually("the Lease released", 10*time.Second, func() bool { return lease.holder() == "" })
	t.Logf("SIGTERM → Lease released in %s", lease.since("").Sub(stopped).Round(time.Millisecond))
	if got := lease.holders(); !slices.Equal(got, []string{leader.id, standby.id, ""}) {
		t.Errorf("holders of the Lease: %q, want %s, %s, then none", got, leader.id, standby.id)
	}
}

// leaseRBAC is docs/replicas.md's namespace, service account and Role:
// all the Lease needs.
const leaseRBAC = `apiVersion: v1
kind: Namespace
metadata: {name: canarybot}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: canarybot, namespace: canarybot}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: canarybot-leader-election, namespace: canarybot}
rules:
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [create]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  resourceNames: [canarybot]
  verbs: [get, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: canarybot-leader-election, namespace: canarybot}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: canarybot-leader-election}
subjects:
- {kind: ServiceAccount, name: canarybot, namespace: canarybot}
`

// leaseServiceAccount applies leaseRBAC and returns a kubeconfig with a
// token of its service account: the bots hold the Lease with that Role
// alone, not as cluster admin.
func leaseServiceAccount(t *testing.T, r *rollout) string {
	t.Helper()
	if _, err := r.s.Kubectl(r.ctx, leaseRBAC, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	token, err := r.s.Kubectl(r.ctx, "", "create", "token", "canarybot", "-n", leaseNamespace, "--duration", "1h")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(r.s.Dir, "kubeconfig-canarybot")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: canarybot, user: {token: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: canarybot, namespace: canarybot}}]
current-context: e2e
`, r.s.APIServer, strings.TrimSpace(token))), 0o600); err != nil {
		t.Fatal(err)
	}
	// `kubectl auth can-i` answers no with exit status 1.
	out, _ := r.s.Kubectl(r.ctx, "", "auth", "can-i", "update", "leases/other", "-n", leaseNamespace,
		"--as", "system:serviceaccount:canarybot:canarybot")
	if strings.TrimSpace(out) != "no" {
		t.Fatalf("may the service account update another Lease? %q, want no", out)
	}
	return path
}

// bot is one `canarybot reconcile --leader-elect` process.
type bot struct {
	id, logPath string
	cmd         *exec.Cmd
}

func otherBot(id string) string {
	if id == "bot-a" {
		return "bot-b"
	}
	return "bot-a"
}

// startLeaderBot starts a replica with its own clone, on the rollout's
// plan, holding the Lease as id; it is killed at the end of the test.
func startLeaderBot(t *testing.T, r *rollout, bin, kubeconfig, id string) *bot {
	t.Helper()
	b := &bot{id: id, logPath: filepath.Join(r.s.Dir, "logs", "canarybot-"+id+".log")}
	b.cmd = exec.Command(bin, "reconcile", "--repo", r.bare, "--dir", filepath.Join(t.TempDir(), id), "--plan", "plans/qwen.yaml",
		"--prometheus", r.s.Prometheus, "--argocd-server", r.s.ArgoCD, "--argocd-plaintext",
		"--auto-approve", "--registry-insecure", "--poll", "2s", "--log-level", "info",
		"--leader-elect", "--leader-elect-kubeconfig", kubeconfig, "--leader-elect-identity", id,
		"--leader-elect-namespace", leaseNamespace, "--leader-elect-lease", leaseName,
		"--leader-elect-lease-duration", leaseDuration.String(), "--leader-elect-renew-deadline", "3s",
		"--leader-elect-retry-period", "500ms")
	b.cmd.Env = append(os.Environ(), "ARGOCD_AUTH_TOKEN=e2e")
	logf, err := os.Create(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logf.Close() })
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			_ = b.cmd.Process.Signal(syscall.SIGKILL)
			_ = b.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("==== %s\n%s", b.logPath, b.log(t))
		}
	})
	return b
}

func (b *bot) signal(t *testing.T, sig syscall.Signal) time.Time {
	t.Helper()
	at := time.Now()
	if err := b.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	return at
}

func (b *bot) log(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// leaseWatch polls the Lease every 100ms and keeps each holderIdentity it
// saw, in order, with when it first saw it.
type leaseWatch struct {
	mu   sync.Mutex
	seen []string
	at   map[string]time.Time
}

func watchLease(t *testing.T, r *rollout) *leaseWatch {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", r.s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client, err := coordinationv1.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	w := &leaseWatch{at: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			// A failed read (not found yet, a slow kube-apiserver) is
			// read again on the next round.
			if l, err := client.Leases(leaseNamespace).Get(ctx, leaseName, metav1.GetOptions{}); err == nil {
				w.observe(deref(l.Spec.HolderIdentity), time.Now())
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return w
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (w *leaseWatch) observe(holder string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.seen); n == 0 && holder != "" || n > 0 && w.seen[n-1] != holder {
		w.seen = append(w.seen, holder)
		w.at[holder] = at
	}
}

// holder is the holder last seen, "" before any.
func (w *leaseWatch) holder() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) == 0 {
		return ""
	}
	return w.seen[len(w.seen)-1]
}

// holders are the holders seen, in order ("" once the Lease is released).
func (w *leaseWatch) holders() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.seen...)
}

// since is when holder was first seen.
func (w *leaseWatch) since(holder string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.at[holder]
}
