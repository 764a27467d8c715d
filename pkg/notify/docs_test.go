package notify

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/canarybot/canarybot/pkg/canary"
)

// docBlocks returns the fenced blocks of lang in docs/notifications.md.
func docBlocks(t *testing.T, lang string) []string {
	t.Helper()
	b, err := os.ReadFile("../../docs/notifications.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	parts := strings.Split(string(b), "```"+lang+"\n")
	for _, p := range parts[1:] {
		out = append(out, p[:strings.Index(p, "```")])
	}
	return out
}

// The documented configuration is valid as written.
func TestDocumentedConfigIsValid(t *testing.T) {
	yamls := docBlocks(t, "yaml")
	if len(yamls) == 0 {
		t.Fatal("no yaml example")
	}
	cfg, err := canary.ReadRepositoryConfig(fstest.MapFS{canary.ConfigPath: {Data: []byte(yamls[0])}})
	if err != nil {
		t.Fatal(err)
	}
	if ch := cfg.Spec.Notifications; len(ch) != 2 || ch[0].Wants(canary.EventAdvanced) || !ch[0].Wants(canary.EventReverted) {
		t.Errorf("channels %+v", ch)
	}
}

// The documented openssl check accepts a notice's signature and refuses
// a tampered body.
func TestDocumentedShellCheckVerifies(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	shells := docBlocks(t, "sh")
	if len(shells) != 1 {
		t.Fatalf("%d sh examples, want 1", len(shells))
	}
	const secret = "s3cret with spaces"
	body, err := encode(NewPayload(Event{ID: "abc/reverted", Type: canary.EventReverted, Plan: "qwen", Reason: "a < b & c"}))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, content := range map[string]string{"valid": string(body), "tampered": strings.Replace(string(body), "qwen", "qwem", 1)} {
		if err := os.WriteFile(filepath.Join(dir, "body.json"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", shells[0])
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SECRET="+secret, "SIG="+Sign([]byte(secret), body))
		out, err := cmd.CombinedOutput()
		if want := map[string]string{"valid": "valid\n", "tampered": "INVALID\n"}[name]; err != nil || string(out) != want {
			t.Errorf("%s body: %v, output %q, want %q", name, err, out, want)
		}
	}
}
