package stack

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Options configure Start.
type Options struct {
	// Dir is the run directory; every process keeps its data and log there.
	Dir   string
	Tools Tools
	Log   *slog.Logger
	// CRDs are extra CRD files to apply (KServe, Gateway API).
	CRDs []string
	// ArgoCDCRDs is the argo-cd module's manifests/crds directory.
	ArgoCDCRDs string
	// ArgoCDConfig are patch files merged into argocd-cm before Argo CD
	// starts (resource health customizations).
	ArgoCDConfig []string
}

// Stack is a running stack.
type Stack struct {
	Dir        string
	Kubeconfig string
	// APIServer is https://127.0.0.1:<port>; Token is its admin token.
	APIServer, Token string
	// ArgoCD is the API server's host:port (plaintext gRPC, auth disabled).
	ArgoCD     string
	RepoServer string
	Redis      string
	// Prometheus is set by tests that start one beside the stack.
	Prometheus string
	tools      Tools
	argoConfig []string
	log        *slog.Logger
	procs      []*proc
	env        []string
}

// Start brings the stack up; on error it stops what it started.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	s = &Stack{Dir: o.Dir, tools: o.Tools, argoConfig: o.ArgoCDConfig, log: o.Log}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, s.Logs(20))
			s.Stop()
		}
	}()
	ports, err := freePorts(12)
	if err != nil {
		return s, err
	}
	t0 := time.Now()
	if err := s.startEtcd(ctx, ports[0], ports[1], ports[2]); err != nil {
		return s, err
	}
	if err := s.startAPIServer(ctx, ports[0], ports[3]); err != nil {
		return s, err
	}
	s.log.Info("kube-apiserver ready", "after", time.Since(t0).Round(time.Millisecond))
	if err := s.installCRDs(ctx, o); err != nil {
		return s, err
	}
	if err := s.startRedis(ctx, ports[4]); err != nil {
		return s, err
	}
	if err := s.startArgoCD(ctx, ports[5:11]); err != nil {
		return s, err
	}
	s.log.Info("stack ready", "after", time.Since(t0).Round(time.Millisecond))
	return s, nil
}

func (s *Stack) startEtcd(ctx context.Context, client, peer, metrics int) error {
	c, pe := fmt.Sprintf("http://127.0.0.1:%d", client), fmt.Sprintf("http://127.0.0.1:%d", peer)
	p, err := s.start("etcd", nil, s.tools.Etcd, "--name", "default", "--data-dir", filepath.Join(s.Dir, "etcd"),
		"--listen-client-urls", c, "--advertise-client-urls", c, "--listen-peer-urls", pe,
		"--initial-advertise-peer-urls", pe, "--initial-cluster", "default="+pe,
		"--listen-metrics-urls", fmt.Sprintf("http://127.0.0.1:%d", metrics))
	if err != nil {
		return err
	}
	return waitFor(ctx, p, 30*time.Second, "health", func() bool {
		return httpOK(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/health", metrics), "")
	})
}

func (s *Stack) startAPIServer(ctx context.Context, etcd, port int) error {
	dir := filepath.Join(s.Dir, "apiserver")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeServiceAccountKeys(dir); err != nil {
		return err
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	s.Token = hex.EncodeToString(tok)
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(s.Token+",admin,uid-admin,system:masters\n"), 0o600); err != nil {
		return err
	}
	s.APIServer = fmt.Sprintf("https://127.0.0.1:%d", port)
	p, err := s.start("kube-apiserver", nil, s.tools.APIServer,
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcd), "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port), "--cert-dir="+filepath.Join(dir, "certs"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"), "--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"), "--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/24", "--enable-priority-and-fairness=false", "--endpoint-reconciler-type=none")
	if err != nil {
		return err
	}
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if err := waitFor(ctx, p, 90*time.Second, "readyz", func() bool { return httpOK(insecure, s.APIServer+"/readyz", s.Token) }); err != nil {
		return err
	}
	s.Kubeconfig = filepath.Join(s.Dir, "kubeconfig")
	return os.WriteFile(s.Kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: admin, namespace: default}}]
current-context: e2e
`, s.APIServer, s.Token)), 0o600)
}

func writeServiceAccountKeys(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
		Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// Kubectl runs kubectl against the stack; stdin may be empty.
func (s *Stack) Kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.tools.Kubectl, append([]string{"--kubeconfig", s.Kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (s *Stack) installCRDs(ctx context.Context, o Options) error {
	if _, err := s.Kubectl(ctx, "", "apply", "--server-side", "-k", o.ArgoCDCRDs); err != nil {
		return err
	}
	args := []string{"apply", "--server-side"}
	for _, c := range o.CRDs {
		args = append(args, "-f", c)
	}
	if _, err := s.Kubectl(ctx, "", args...); err != nil {
		return err
	}
	_, err := s.Kubectl(ctx, "", "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
	return err
}

func (s *Stack) startRedis(ctx context.Context, port int) error {
	s.Redis = fmt.Sprintf("127.0.0.1:%d", port)
	p, err := s.start("redis", nil, s.tools.Redis, "--bind", "127.0.0.1", "--port", fmt.Sprint(port),
		"--save", "", "--appendonly", "no", "--dir", s.Dir)
	if err != nil {
		return err
	}
	return waitFor(ctx, p, 10*time.Second, "port", func() bool { return tcpOpen(s.Redis) })
}
