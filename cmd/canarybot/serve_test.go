package main

import (
	"strings"
	"testing"
)

// serve refuses bad GitHub settings up front, naming every problem.
func TestServeRefusesBadSettingsWithEveryReason(t *testing.T) {
	t.Setenv("CANARYBOT_TEST_TOKEN", "ghp_x")
	t.Setenv("CANARYBOT_TEST_EMPTY_SECRET", "")
	_, _, err := run(t, "serve", "--repo", "https://github.com/acme/gitops.git", "--dir", t.TempDir(),
		"--plan", "plans/qwen.yaml", "--prometheus", "http://127.0.0.1:9", "--argocd-server", "127.0.0.1:9",
		"--github-repository", "acme", "--github-app-id", "12", "--github-token-env", "CANARYBOT_TEST_TOKEN",
		"--webhook-secret-env", "CANARYBOT_TEST_EMPTY_SECRET", "--merge-method", "fast-forward")
	if err == nil {
		t.Fatal("serve started with bad settings")
	}
	for _, want := range []string{
		"--webhook-secret-env CANARYBOT_TEST_EMPTY_SECRET: the variable is empty",
		`--merge-method "fast-forward": want squash, merge or rebase`,
		`--github-repository "acme": want OWNER/NAME`,
		"give either a GitHub App (app ID, installation ID, private key) or a token, not both",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestServeRefusesAPathTraversingPlan(t *testing.T) {
	_, _, err := run(t, "serve", "--repo", "x", "--dir", t.TempDir(), "--plan", "../../etc/passwd",
		"--prometheus", "http://127.0.0.1:9", "--argocd-server", "127.0.0.1:9", "--github-repository", "a/b")
	if err == nil || !strings.Contains(err.Error(), "--plan") {
		t.Fatalf("err = %v, want a --plan error", err)
	}
}
