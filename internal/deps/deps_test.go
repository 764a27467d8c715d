package deps

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

const (
	module = "github.com/canarybot/canarybot"
	nvml   = "github.com/NVIDIA/go-nvml"
	// gpuAgent is the one command that may link go-nvml.
	gpuAgent = module + "/cmd/gpu-agent"
)

// coreLeaves are the packages outside pkg/canary and the standard library
// that the core may depend on, directly or not: three std-only leaves of
// this module and a YAML codec, none of them an SDK.
var coreLeaves = []string{
	module + "/pkg/artifact",       // parse and refuse artifact references
	module + "/pkg/gpu/clockevent", // NVML's clock event reason names, without NVML
	module + "/pkg/redact",         // hide credentials in URLs (notification endpoints)
	"sigs.k8s.io/yaml",             // strict plan and state decoding
	"go.yaml.in/yaml/v2",           // sigs.k8s.io/yaml's parser
}

// pkgInfo is what the rules read of `go list -deps -json`.
type pkgInfo struct {
	ImportPath string
	Name       string
	Standard   bool
	Imports    []string
	Deps       []string
	Error      *struct{ Err string }
}

var (
	listOnce sync.Once
	listed   map[string]*pkgInfo
	listErr  error
)

// goList lists every package of the module and all their dependencies,
// once per test binary, as a cgo build with the Makefile's tags sees them
// (go-nvml's import in pkg/gpu is behind a cgo build constraint).
func goList(t *testing.T) map[string]*pkgInfo {
	t.Helper()
	listOnce.Do(func() { listed, listErr = runGoList() })
	if listErr != nil {
		t.Fatal(listErr)
	}
	return listed
}

func runGoList() (map[string]*pkgInfo, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Name,Standard,Imports,Deps,Error", "./...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOFLAGS=-tags=kustomize_disable_go_plugin_support")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps ./...: %w\n%s", err, stderr.String())
	}
	pkgs := map[string]*pkgInfo{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkgInfo
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		if p.Error != nil {
			return nil, fmt.Errorf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs[p.ImportPath] = &p
	}
	return pkgs, nil
}

// moduleRoot is the directory of this module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not in a module")
	}
	return filepath.Dir(gomod), nil
}

// under reports whether path is dir or a package below it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// ours lists the module's own packages, sorted.
func ours(pkgs map[string]*pkgInfo) []*pkgInfo {
	var out []*pkgInfo
	for path, p := range pkgs {
		if under(path, module) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *pkgInfo) int { return strings.Compare(a.ImportPath, b.ImportPath) })
	return out
}

// TestPkgImportsNoInternal: shipped library code never depends on the
// module's internal/ packages, which are test harnesses and demo wiring.
// Tests of pkg/ packages may use them.
func TestPkgImportsNoInternal(t *testing.T) {
	pkgs := goList(t)
	n := 0
	for _, p := range ours(pkgs) {
		if !under(p.ImportPath, module+"/pkg") {
			continue
		}
		n++
		for _, imp := range p.Imports {
			if under(imp, module+"/internal") {
				t.Errorf("%s imports %s: pkg/ must not import internal/", p.ImportPath, imp)
			}
		}
	}
	if n == 0 {
		t.Fatalf("go list found no packages under %s/pkg", module)
	}
}

// TestCoreImportsNoSDK: pkg/canary, with everything it pulls in, is the
// standard library, its own subpackages and coreLeaves; and the module's
// own leaves among them import only the standard library.
func TestCoreImportsNoSDK(t *testing.T) {
	pkgs := goList(t)
	core := module + "/pkg/canary"
	n := 0
	for _, p := range ours(pkgs) {
		if !under(p.ImportPath, core) {
			continue
		}
		n++
		for _, dep := range p.Deps {
			if d := pkgs[dep]; d != nil && d.Standard || under(dep, core) || slices.Contains(coreLeaves, dep) {
				continue
			}
			t.Errorf("%s depends on %s: the core may use only the standard library, %s/... and %v", p.ImportPath, dep, core, coreLeaves)
		}
	}
	if n == 0 {
		t.Fatalf("go list found no package %s", core)
	}
	for _, leaf := range coreLeaves {
		p := pkgs[leaf]
		if p == nil || !under(leaf, module) {
			continue
		}
		for _, imp := range p.Imports {
			if d := pkgs[imp]; d == nil || !d.Standard {
				t.Errorf("%s imports %s: a leaf of the core imports only the standard library", leaf, imp)
			}
		}
	}
}

// TestNVMLOnlyInGPUAgent: go-nvml (cgo, lazily bound NVML symbols) is
// linked into cmd/gpu-agent and into no other command, so canarybot builds
// and starts without it; and the gpu-agent's JSON API package, which the
// gates decode, does not pull it in.
func TestNVMLOnlyInGPUAgent(t *testing.T) {
	pkgs := goList(t)
	linksNVML := func(p *pkgInfo) bool {
		return slices.ContainsFunc(p.Deps, func(d string) bool { return under(d, nvml) })
	}
	if agent := pkgs[gpuAgent]; agent == nil || agent.Name != "main" {
		t.Errorf("no command %s", gpuAgent)
	} else if !linksNVML(agent) {
		t.Errorf("%s does not link %s: this test would see nothing", gpuAgent, nvml)
	}
	for _, p := range ours(pkgs) {
		if p.Name == "main" && p.ImportPath != gpuAgent && linksNVML(p) {
			t.Errorf("command %s links %s: only %s may", p.ImportPath, nvml, gpuAgent)
		}
	}
	for _, leaf := range []string{module + "/cmd/canarybot", module + "/pkg/gpu/gpuapi", module + "/pkg/gates"} {
		p := pkgs[leaf]
		if p == nil {
			t.Errorf("no package %s", leaf)
		} else if linksNVML(p) {
			t.Errorf("%s depends on %s", leaf, nvml)
		}
	}
}
