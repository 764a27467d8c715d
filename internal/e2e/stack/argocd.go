package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// argoSetup is what an Argo CD install puts in its namespace, reduced to
// what the three components read.
const argoSetup = `apiVersion: v1
kind: Namespace
metadata: {name: argocd}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-cm, namespace: argocd, labels: {app.kubernetes.io/part-of: argocd}}
data:
  timeout.reconciliation: 10s
---
apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-rbac-cm, namespace: argocd, labels: {app.kubernetes.io/part-of: argocd}}
data: {policy.default: role:admin}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-cmd-params-cm, namespace: argocd, labels: {app.kubernetes.io/part-of: argocd}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-ssh-known-hosts-cm, namespace: argocd, labels: {app.kubernetes.io/part-of: argocd}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-tls-certs-cm, namespace: argocd, labels: {app.kubernetes.io/part-of: argocd}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-gpg-keys-cm, namespace: argocd, labels: {app.kubernetes.io/part-of: argocd}}
---
apiVersion: v1
kind: Secret
metadata: {name: argocd-secret, namespace: argocd, labels: {app.kubernetes.io/part-of: argocd}}
stringData: {server.secretkey: e2e-server-secret-key}
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: default, namespace: argocd}
spec:
  sourceRepos: ['*']
  destinations: [{namespace: '*', server: '*'}]
  clusterResourceWhitelist: [{group: '*', kind: '*'}]
`

// startArgoCD runs the repo-server, the application controller and the
// API server from the one multi-call binary. ports: repo, repo metrics,
// controller metrics, server, server metrics.
func (s *Stack) startArgoCD(ctx context.Context, ports []int) error {
	if _, err := s.Kubectl(ctx, argoSetup, "apply", "-f", "-"); err != nil {
		return err
	}
	for _, f := range s.argoConfig {
		if _, err := s.Kubectl(ctx, "", "-n", "argocd", "patch", "configmap", "argocd-cm", "--patch-file", f); err != nil {
			return err
		}
	}
	dir := filepath.Join(s.Dir, "argocd")
	for _, d := range []string{"ssh", "tls", "gnupg", "tmp", "static"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	env := []string{
		"ARGOCD_FAKE_IN_CLUSTER=true", "KUBECONFIG=" + s.Kubeconfig, "ARGOCD_GPG_ENABLED=false",
		"ARGOCD_RECONCILIATION_TIMEOUT=10s", "ARGOCD_SSH_DATA_PATH=" + filepath.Join(dir, "ssh"),
		"ARGOCD_TLS_DATA_PATH=" + filepath.Join(dir, "tls"), "ARGOCD_GNUPGHOME=" + filepath.Join(dir, "gnupg"),
		"TMPDIR=" + filepath.Join(dir, "tmp"), "ARGOCD_ASK_PASS_SOCK=" + filepath.Join(dir, "askpass.sock"),
		"PATH=" + filepath.Dir(s.tools.Kustomize) + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
	s.RepoServer = fmt.Sprintf("127.0.0.1:%d", ports[0])
	repo, err := s.start("argocd-repo-server", append(env, "ARGOCD_BINARY_NAME=argocd-repo-server"), s.tools.ArgoCD,
		"--address", "127.0.0.1", "--port", fmt.Sprint(ports[0]), "--metrics-address", "127.0.0.1",
		"--metrics-port", fmt.Sprint(ports[1]), "--disable-tls", "--revision-cache-expiration", "5s", "--redis", s.Redis)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, repo, 60*time.Second, "gRPC port", func() bool { return tcpOpen(s.RepoServer) }); err != nil {
		return err
	}
	if _, err := s.start("argocd-application-controller", append(env, "ARGOCD_BINARY_NAME=argocd-application-controller"),
		s.tools.ArgoCD, "--kubeconfig", s.Kubeconfig, "--namespace", "argocd", "--repo-server", s.RepoServer,
		"--repo-server-plaintext", "--redis", s.Redis, "--app-resync", "10", "--status-processors", "2",
		"--operation-processors", "2", "--metrics-port", fmt.Sprint(ports[2])); err != nil {
		return err
	}
	s.ArgoCD = fmt.Sprintf("127.0.0.1:%d", ports[3])
	srv, err := s.start("argocd-server", append(env, "ARGOCD_BINARY_NAME=argocd-server"), s.tools.ArgoCD,
		"--kubeconfig", s.Kubeconfig, "--namespace", "argocd", "--insecure", "--address", "127.0.0.1",
		"--port", fmt.Sprint(ports[3]), "--metrics-address", "127.0.0.1", "--metrics-port", fmt.Sprint(ports[4]),
		"--repo-server", s.RepoServer, "--repo-server-plaintext", "--redis", s.Redis,
		"--dex-server", "http://127.0.0.1:1", "--disable-auth", "--staticassets", filepath.Join(dir, "static"))
	if err != nil {
		return err
	}
	return waitFor(ctx, srv, 60*time.Second, "API port", func() bool { return tcpOpen(s.ArgoCD) })
}

// Application creates an Argo CD Application that syncs path of the bare
// repo at repoPath into namespace ns, automatically, with prune and self-heal.
func (s *Stack) Application(ctx context.Context, name, repoPath, path, ns string) error {
	app := fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: %s, namespace: argocd}
spec:
  project: default
  source: {repoURL: "file://%s", targetRevision: main, path: %s}
  destination: {server: "https://kubernetes.default.svc", namespace: %s}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true]
`, name, repoPath, path, ns)
	_, err := s.Kubectl(ctx, app, "apply", "-f", "-")
	return err
}
