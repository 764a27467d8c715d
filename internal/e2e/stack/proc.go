// Package stack starts a real GitOps stack on loopback for canarybot's
// end-to-end suite: etcd, kube-apiserver, Redis, Argo CD's repo-server,
// application-controller and API server, with the Argo CD, KServe and
// Gateway API CRDs installed. Binaries come from scripts/e2e-tools.sh
// (built from the Go module proxy and cached outside the clone) and
// Debian's redis-server; every process logs to a file in the run
// directory, and Stop kills every process group.
package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// proc is one started process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// LogPath is where the process the stack started as name (etcd,
// kube-apiserver, redis, argocd-repo-server, argocd-application-controller,
// argocd-server) logs.
func (s *Stack) LogPath(name string) string { return filepath.Join(s.Dir, "logs", name+".log") }

func (s *Stack) start(name string, env []string, bin string, args ...string) (*proc, error) {
	logPath := s.LogPath(name)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("log file for %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	s.log.Info("started", "process", name, "pid", cmd.Process.Pid, "log", logPath)
	return p, nil
}

// Stop kills every process group, newest first, and waits for them.
func (s *Stack) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	}
	s.procs = nil
}

// Logs returns the last lines of every process's log, for a failing test.
func (s *Stack) Logs(lines int) string {
	var b strings.Builder
	for _, p := range s.procs {
		data, _ := os.ReadFile(p.log)
		ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		fmt.Fprintf(&b, "==== %s (%s)\n%s\n", p.name, p.log, strings.Join(ls[max(0, len(ls)-lines):], "\n"))
	}
	return b.String()
}

// waitFor polls ok until it is true, the process dies, or the timeout.
func waitFor(ctx context.Context, p *proc, timeout time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ok() {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while waiting for %s: %v (see %s)", p.name, what, p.err, p.log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %s after %s (see %s)", p.name, what, timeout, p.log)
		}
	}
	return nil
}

func httpOK(c *http.Client, url, token string) bool {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func tcpOpen(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// freePorts reserves n distinct loopback ports.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve a port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// ErrToolsMissing means a program the stack runs is missing.
var ErrToolsMissing = errors.New("e2e tools missing")

// Tools are the binaries the stack runs.
type Tools struct {
	Etcd, APIServer, ArgoCD, Kustomize, Redis, Kubectl string
}

// FindTools reads scripts/e2e-tools.sh's cache (which it prints one
// directory per line) and looks up redis-server and kubectl in PATH. Its
// error says, for each missing program, what provides it.
func FindTools(dirs []string) (Tools, error) {
	var t Tools
	var built, installed []string
	find := func(name string, dst *string, missing *[]string) {
		for _, d := range dirs {
			if p := filepath.Join(d, name); isExec(p) {
				*dst = p
				return
			}
		}
		if p, err := exec.LookPath(name); err == nil {
			*dst = p
			return
		}
		*missing = append(*missing, name)
	}
	find("etcd", &t.Etcd, &built)
	find("kube-apiserver", &t.APIServer, &built)
	find("argocd", &t.ArgoCD, &built)
	find("kustomize", &t.Kustomize, &built)
	find("redis-server", &t.Redis, &installed)
	find("kubectl", &t.Kubectl, &installed)
	var why []string
	if len(built) > 0 {
		why = append(why, fmt.Sprintf("%s not built (run `make e2e-tools`)", strings.Join(built, ", ")))
	}
	if len(installed) > 0 {
		why = append(why, fmt.Sprintf("%s not on PATH (run `scripts/ensure-tools.sh --e2e`, as `make e2e` does: "+
			"it installs Debian's redis-server and says how to install kubectl)", strings.Join(installed, ", ")))
	}
	if len(why) > 0 {
		return t, fmt.Errorf("%w: %s", ErrToolsMissing, strings.Join(why, "; "))
	}
	return t, nil
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}
