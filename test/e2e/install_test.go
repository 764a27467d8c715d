//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canarybot/canarybot/internal/e2e/stack"
	"github.com/canarybot/canarybot/internal/fakegithub"
)

// installNS is the namespace manifests/install installs into.
const installNS = "canarybot"

// TestInstall applies manifests/install, as README's "Install on a
// cluster" does, to the real kube-apiserver: server-side, with strict
// field validation, and its overlays (the ServiceMonitor CRD installed from
// the Prometheus Operator's module). The pod template is admitted under
// the restricted Pod Security Standard the namespace enforces (a pod
// without its security context is refused); the service account may hold
// the Lease canarybot and nothing else; and two `canarybot serve`
// processes run with the Deployment's own args, as that service account:
// one holds the Lease and takes webhooks, both answer the probes, and
// SIGTERM to the leader hands the Lease to the other.
func TestInstall(t *testing.T) {
	bin, err := filepath.Abs("../../bin/canarybot")
	if err != nil || !isExecutable(bin) {
		t.Fatalf("%s missing: `make e2e` builds it first (make build)", bin)
	}
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	crd := filepath.Join(moduleDir(t, "github.com/prometheus-operator/prometheus-operator@v0.85.0", true),
		"example", "prometheus-operator-crd", "monitoring.coreos.com_servicemonitors.yaml")
	kubectl(t, ctx, s, "", "apply", "--server-side", "-f", crd)
	kubectl(t, ctx, s, "", "wait", "--for=condition=Established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com")

	// The base for real, then each overlay (the namespace exists now) as a
	// server-side dry run and for real.
	out := kubectl(t, ctx, s, "", "apply", "--server-side", "--field-manager=canarybot-install", "-k", "../../manifests/install")
	t.Logf("kubectl apply --server-side -k manifests/install:\n%s", out)
	for _, o := range []string{"ingress", "servicemonitor"} {
		dir := "../../manifests/install/overlays/" + o
		kubectl(t, ctx, s, "", "apply", "--server-side", "--field-manager=canarybot-install", "--dry-run=server", "-k", dir)
		kubectl(t, ctx, s, "", "apply", "--server-side", "--field-manager=canarybot-install", "-k", dir)
	}
	if got := kubectl(t, ctx, s, "", "get", "ingress,servicemonitor,deployment,service,pdb,role,rolebinding,serviceaccount",
		"-n", installNS, "-o", "name"); strings.Count(got, "\n") < 8 {
		t.Fatalf("installed objects:\n%s", got)
	}
	template := installedPodTemplate(t, ctx, s)
	checkPodSecurity(t, ctx, s, template)
	checkInstallRBAC(t, ctx, s)
	runInstalledBots(t, ctx, s, bin, template)
}

// kubectl runs kubectl against the stack and fails the test on error.
func kubectl(t *testing.T, ctx context.Context, s *stack.Stack, stdin string, args ...string) string {
	t.Helper()
	out, err := s.Kubectl(ctx, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// installedPodTemplate is the Deployment's pod template as the API
// server stored it (defaults filled in).
func installedPodTemplate(t *testing.T, ctx context.Context, s *stack.Stack) map[string]any {
	t.Helper()
	var d struct {
		Spec struct {
			Replicas int            `json:"replicas"`
			Template map[string]any `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(kubectl(t, ctx, s, "", "get", "deployment", "canarybot", "-n", installNS, "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2", d.Spec.Replicas)
	}
	return d.Spec.Template
}

// checkPodSecurity creates (dry run) a pod from the template in the
// namespace, whose restricted Pod Security Standard admission checks it,
// and shows the check is live: the same pod without its security
// contexts is refused.
func checkPodSecurity(t *testing.T, ctx context.Context, s *stack.Stack, template map[string]any) {
	t.Helper()
	pod := func(name string, strip bool) string {
		spec := deepCopy(t, template["spec"]).(map[string]any)
		if strip {
			delete(spec, "securityContext")
			for _, c := range spec["containers"].([]any) {
				delete(c.(map[string]any), "securityContext")
			}
		}
		b, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": name, "namespace": installNS, "labels": template["metadata"].(map[string]any)["labels"]},
			"spec":     spec})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	kubectl(t, ctx, s, pod("canarybot-restricted", false), "create", "--dry-run=server", "-f", "-")
	out, err := s.Kubectl(ctx, pod("canarybot-stripped", true), "create", "--dry-run=server", "-f", "-")
	if err == nil || !strings.Contains(out, `violates PodSecurity "restricted`) {
		t.Errorf("a pod without the security contexts: %v, %s; want the restricted standard to refuse it", err, out)
	}
}

func deepCopy(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkInstallRBAC asks the API server what the service account may do:
// create Leases, get and update the Lease canarybot, nothing else.
func checkInstallRBAC(t *testing.T, ctx context.Context, s *stack.Stack) {
	t.Helper()
	as := "system:serviceaccount:" + installNS + ":canarybot"
	for _, c := range []struct {
		verb, resource, ns, want string
	}{
		{"create", "leases.coordination.k8s.io", installNS, "yes"},
		{"get", "leases.coordination.k8s.io/canarybot", installNS, "yes"},
		{"update", "leases.coordination.k8s.io/canarybot", installNS, "yes"},
		{"update", "leases.coordination.k8s.io/other", installNS, "no"},
		{"list", "leases.coordination.k8s.io", installNS, "no"},
		{"delete", "leases.coordination.k8s.io/canarybot", installNS, "no"},
		{"get", "secrets", installNS, "no"},
		{"get", "pods", installNS, "no"},
		{"create", "leases.coordination.k8s.io", "default", "no"},
	} {
		// `kubectl auth can-i` answers no with exit status 1.
		out, _ := s.Kubectl(ctx, "", "auth", "can-i", c.verb, c.resource, "-n", c.ns, "--as", as)
		if got := strings.TrimSpace(out); got != c.want {
			t.Errorf("may %s %s %s in %s? %q, want %s", as, c.verb, c.resource, c.ns, got, c.want)
		}
	}
}

// installBot is one replica run with the Deployment's args.
type installBot struct {
	id, listen, probes, logPath string
	cmd                         *exec.Cmd
}

// runInstalledBots runs two replicas as the pods would, with the
// Deployment's args and the service account's token, against a fake
// GitHub App; checks the Lease, the probes and the webhook port; then
// SIGTERMs the leader and checks the handover.
func runInstalledBots(t *testing.T, ctx context.Context, s *stack.Stack, bin string, template map[string]any) {
	t.Helper()
	gh := fakegithub.New(t, fakegithub.Options{WebhookSecret: "install-secret", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	gh.AddInstallation("acme")
	kubeconfig := serviceAccountKubeconfig(t, ctx, s)
	key := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(key, gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	args := containerArgs(t, template)
	bots := map[string]*installBot{}
	for _, id := range []string{"canarybot-a", "canarybot-b"} {
		b := &installBot{id: id, listen: freeLoopback(t), probes: freeLoopback(t), logPath: filepath.Join(s.Dir, "logs", id+".log")}
		vars := map[string]string{"POD_NAME": id, "POD_NAMESPACE": installNS, "GITHUB_APP_ID": fmt.Sprint(gh.AppID()),
			"PROMETHEUS_URL": "http://127.0.0.1:1", "ARGOCD_SERVER": s.ArgoCD}
		set := map[string]string{"listen": b.listen, "metrics-listen": b.probes, "dir": filepath.Join(t.TempDir(), id),
			"github-private-key-file": key}
		argv := append(podArgs(t, args, vars, set), "--github-api-url", gh.URL()+"/", "--argocd-plaintext",
			"--leader-elect-kubeconfig", kubeconfig)
		b.start(t, bin, argv, "GITHUB_WEBHOOK_SECRET=install-secret", "ARGOCD_AUTH_TOKEN=e2e")
		bots[id] = b
	}
	holder := func() string {
		out, _ := s.Kubectl(ctx, "", "get", "lease", "canarybot", "-n", installNS, "-o", "jsonpath={.spec.holderIdentity}")
		return strings.TrimSpace(out)
	}
	eventually(t, "a replica holding the Lease canarybot", time.Minute, func() bool { return bots[holder()] != nil })
	leader := bots[holder()]
	standby := bots[map[string]string{"canarybot-a": "canarybot-b", "canarybot-b": "canarybot-a"}[leader.id]]
	eventually(t, "the leader serving webhooks", 30*time.Second, func() bool { return httpOK("http://" + leader.listen + "/healthz") })
	for _, b := range bots {
		if !httpOK("http://"+b.probes+"/healthz") || !httpOK("http://"+b.probes+"/metrics") {
			t.Errorf("%s does not answer GET /healthz and /metrics on --metrics-listen (the probes' port)", b.id)
		}
	}
	if c, err := net.DialTimeout("tcp", standby.listen, time.Second); err == nil {
		_ = c.Close()
		t.Errorf("the standby %s listens for webhooks: only the leader should", standby.id)
	}
	stopped := time.Now()
	if err := leader.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the standby taking the Lease over", 30*time.Second, func() bool { return holder() == standby.id })
	t.Logf("SIGTERM to the leader %s → %s holds the Lease after %s", leader.id, standby.id, time.Since(stopped).Round(10*time.Millisecond))
	eventually(t, "the new leader serving webhooks", 30*time.Second, func() bool { return httpOK("http://" + standby.listen + "/healthz") })
	if err := leader.cmd.Wait(); err != nil {
		t.Errorf("the old leader after SIGTERM: %v, want exit 0", err)
	}
}

// containerArgs is the bot container's args in the stored template.
func containerArgs(t *testing.T, template map[string]any) []string {
	t.Helper()
	var spec struct {
		Containers []struct{ Args []string } `json:"containers"`
	}
	b, _ := json.Marshal(template["spec"])
	if err := json.Unmarshal(b, &spec); err != nil || len(spec.Containers) != 1 {
		t.Fatalf("pod spec %s: %v", b, err)
	}
	return spec.Containers[0].Args
}

// podArgs is args as the kubelet would pass them in a pod: each $(VAR)
// expanded from vars (the pod's env); then each --name=value flag named
// in set gets set's value instead (addresses, paths on this machine).
func podArgs(t *testing.T, args []string, vars, set map[string]string) []string {
	t.Helper()
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	var out []string
	for _, a := range args {
		a = ref.ReplaceAllStringFunc(a, func(m string) string {
			v, ok := vars[m[2:len(m)-1]]
			if !ok {
				t.Fatalf("arg %q: no value for %s", a, m)
			}
			return v
		})
		if name, _, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && strings.HasPrefix(a, "--") {
			if v, ok := set[name]; ok {
				a = "--" + name + "=" + v
			}
		}
		out = append(out, a)
	}
	return out
}

func (b *installBot) start(t *testing.T, bin string, args []string, env ...string) {
	t.Helper()
	b.cmd = exec.Command(bin, args...)
	b.cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			_ = b.cmd.Process.Signal(syscall.SIGTERM)
			_ = b.cmd.Wait()
		}
		_ = logf.Close()
		if t.Failed() {
			log, _ := os.ReadFile(b.logPath)
			t.Logf("==== %s (%s)\n%s", b.id, strings.Join(args, " "), log)
		}
	})
}

// serviceAccountKubeconfig is a kubeconfig with a token of the installed
// service account: the replicas hold the Lease with its Role alone.
func serviceAccountKubeconfig(t *testing.T, ctx context.Context, s *stack.Stack) string {
	t.Helper()
	token := kubectl(t, ctx, s, "", "create", "token", "canarybot", "-n", installNS, "--duration", "1h")
	path := filepath.Join(t.TempDir(), "kubeconfig-canarybot")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: canarybot, user: {token: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: canarybot, namespace: %s}}]
current-context: e2e
`, s.APIServer, strings.TrimSpace(token), installNS)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freeLoopback is a loopback address nobody listens on.
func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// httpOK reports whether GET url answers 200.
func httpOK(url string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// eventually polls ok every 200ms until it holds, failing after timeout.
func eventually(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
