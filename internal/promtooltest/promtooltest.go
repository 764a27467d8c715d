// Package promtooltest runs the real promtool (Debian's prometheus
// package) from tests: `promtool check metrics` on a scrape, `promtool
// check rules` and `promtool test rules` on rule files.
//
// A test that needs promtool skips, saying so, when it is not installed;
// with CANARYBOT_REQUIRE_PROMTOOL set (.ci/run sets it) it fails instead.
package promtooltest

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// RequireEnv, when set, turns a missing promtool into a failure.
const RequireEnv = "CANARYBOT_REQUIRE_PROMTOOL"

// Path returns promtool's path, or skips t (fails it, with RequireEnv
// set) when promtool is not installed.
func Path(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err == nil {
		return bin
	}
	const hint = "promtool not found in PATH: install it with `sudo apt-get install -y --no-install-recommends prometheus` " +
		"(Debian/Ubuntu; make test and .ci/run do)"
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s; %s is set, so this test may not skip", hint, RequireEnv)
	}
	t.Skipf("%s; skipping (set %s=1 to fail instead)", hint, RequireEnv)
	return ""
}

// CheckMetrics runs `promtool check metrics` on an exposition and fails t
// with promtool's complaints.
func CheckMetrics(t testing.TB, exposition []byte) {
	t.Helper()
	cmd := exec.Command(Path(t), "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n--- exposition:\n%s", err, out, exposition)
	}
}

// Run runs promtool with args in dir and returns its output; it fails t
// when promtool does.
func Run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(Path(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
	return string(out)
}
