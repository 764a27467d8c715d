package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/canarybot/canarybot/pkg/gpu"
)

// binPath is the gpu-agent binary TestMain builds once for this run.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gpu-agent-bin-")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "gpu-agent")
	cmd := exec.Command("go", "build", "-o", binPath, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic("go build gpu-agent: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the command in-process with args.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// hostHasNVML reports whether this host can open NVML (a GPU box).
func hostHasNVML(t *testing.T) bool {
	t.Helper()
	c := gpu.NewHostCollector()
	err := c.Open(context.Background())
	if err == nil {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		return true
	}
	if !errors.Is(err, gpu.ErrNVMLUnavailable) {
		t.Fatalf("NVML here is neither available nor cleanly absent: %v", err)
	}
	return false
}

// The binary must start: go-nvml's lazily bound symbols abort a binary at
// start when something else in it (kustomize's plugin loader) asks for
// immediate binding.
func TestBinaryStarts(t *testing.T) {
	out, err := exec.Command(binPath, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "gpu-agent version ") {
		t.Fatalf("gpu-agent --version: %v\n%s", err, out)
	}
}

// TestGPUAgentServes runs the built binary as the DaemonSet would. On a
// host without NVML it must start, serve canarybot_gpu_up 0 with the open
// error counted, answer the JSON API with 503, and exit 0 on SIGTERM.
func TestGPUAgentServes(t *testing.T) {
	withNVML := hostHasNVML(t)
	cmd := exec.Command(binPath, "--listen", "127.0.0.1:0", "--node-name", "test-node",
		"--proc-root", t.TempDir(), "--pods-log-dir", t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var base string
	select {
	case line := <-lines:
		m := regexp.MustCompile(`^gpu-agent serving on (http://127\.0\.0\.1:\d+) `).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("first line %q does not say where it serves; stderr:\n%s", line, stderr.String())
		}
		base = m[1]
	case <-time.After(30 * time.Second):
		t.Fatalf("gpu-agent printed nothing in 30s; stderr:\n%s", stderr.String())
	}

	body := httpGet(t, base+"/metrics", http.StatusOK)
	wantUp := `canarybot_gpu_up{node="test-node"} 0`
	if withNVML {
		wantUp = `canarybot_gpu_up{node="test-node"} 1`
	}
	if !strings.Contains(body, wantUp+"\n") {
		t.Errorf("metrics lack %q:\n%s", wantUp, body)
	}
	if !withNVML {
		if !regexp.MustCompile(`(?m)^canarybot_gpu_collect_errors_total\{node="test-node",op="open"\} [1-9]`).MatchString(body) {
			t.Errorf("metrics do not count the failed open:\n%s", body)
		}
		var e gpu.APIError
		if err := json.Unmarshal([]byte(httpGet(t, base+gpu.APIPath, http.StatusServiceUnavailable)), &e); err != nil ||
			!strings.HasPrefix(e.Error, "NVML not available on this host: ") {
			t.Errorf("JSON API error = %+v (%v)", e, err)
		}
	} else {
		var snap gpu.Snapshot
		if err := json.Unmarshal([]byte(httpGet(t, base+gpu.APIPath, http.StatusOK)), &snap); err != nil || snap.Node != "test-node" {
			t.Errorf("snapshot = %+v (%v)", snap, err)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("gpu-agent exit on SIGTERM: %v; stderr:\n%s", err, stderr.String())
	}
}

// httpGet fetches url, checks the status and returns the body.
func httpGet(t *testing.T, url string, want int) string {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s = %s, want %d:\n%s", url, resp.Status, want, b)
	}
	return string(b)
}

func TestGPUAgentOnce(t *testing.T) {
	out, _, err := run(t, "--once", "--node-name", "n1")
	if !hostHasNVML(t) {
		if err == nil || !strings.HasPrefix(err.Error(), "NVML not available on this host: ") || out != "" {
			t.Fatalf("gpu-agent --once = %v, output %q; want the NVML error and no output", err, out)
		}
		return
	}
	var snap gpu.Snapshot
	if err != nil || json.Unmarshal([]byte(out), &snap) != nil || snap.Node != "n1" {
		t.Fatalf("gpu-agent --once = %v:\n%s", err, out)
	}
}

// Without cgo, which go-nvml needs, the gpu-agent still builds, and says
// why it reads no GPU.
func TestGPUAgentWithoutCgo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gpu-agent-nocgo")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	var stdout, stderr strings.Builder
	cmd := exec.Command(bin, "--once")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	want := "NVML not available on this host: this binary was built without cgo (CGO_ENABLED=0), and NVML is loaded through cgo"
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), want) || stdout.Len() != 0 {
		t.Fatalf("gpu-agent --once without cgo: %v, stdout %q, stderr %q; want exit 1 saying %q", err, stdout.String(), stderr.String(), want)
	}
}

func TestGPUAgentFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--interval", "0s"}, "--interval 0s: must be positive"},
		{[]string{"--interval", "1m", "--history", "30s"}, "--history 30s: must be at least --interval 1m0s"},
		{[]string{"--listen", "127.0.0.1:notaport"}, "listen on 127.0.0.1:notaport: "},
		{[]string{"--log-level", "loud"}, `--log-level "loud": want debug, info, warn or error`},
		{[]string{"extra"}, `unknown command "extra" for "gpu-agent"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := run(t, tc.args...)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestGPUAgentManifestArgs parses the DaemonSet's command and args with
// the real command's flags. (pkg/gpu/agent's tests check the kustomize
// build of manifests/gpu-agent; this one reads the file as it is, so that
// this test binary does not link kustomize's plugin loader beside go-nvml.)
func TestGPUAgentManifestArgs(t *testing.T) {
	b, err := os.ReadFile("../../manifests/gpu-agent/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		Kind string `json:"kind"`
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct{ Command, Args []string } `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &ds); err != nil || ds.Kind != "DaemonSet" || len(ds.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("decode DaemonSet: %v\n%s", err, b)
	}
	command, args := ds.Spec.Template.Spec.Containers[0].Command, ds.Spec.Template.Spec.Containers[0].Args
	if len(command) != 1 || filepath.Base(command[0]) != "gpu-agent" {
		t.Fatalf("command %q, want the gpu-agent binary", command)
	}
	c := newRoot(io.Discard, io.Discard)
	if err := c.ParseFlags(args); err != nil {
		t.Fatalf("args %q: %v", args, err)
	}
	if rest := c.Flags().Args(); len(rest) != 0 {
		t.Errorf("args %q leave %q, which the command refuses", args, rest)
	}
	for flag, want := range map[string]string{"proc-root": "/host/proc", "pods-log-dir": "/host/var/log/pods", "listen": ":9836", "log-level": "info"} {
		if got := c.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}
}
