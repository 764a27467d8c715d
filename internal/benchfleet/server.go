package benchfleet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// server is a bare repository served over smart HTTP by the real
// `git http-backend`. It refuses every update that is not a fast-forward
// twice over: receive.denyNonFastForwards, and a pre-receive hook that
// records any such attempt before refusing it. Every update of the branch
// is kept in the repository's reflog, for audit.
type server struct {
	root, bare, URL string
	// pushes counts the receive-pack requests (one per push).
	pushes atomic.Int64
	srv    *httptest.Server
	stderr *os.File
}

// seedCommit is one commit of a repository's seeded history.
type seedCommit struct {
	Message string
	Files   map[string][]byte
}

const zeroSHA = "0000000000000000000000000000000000000000"

// newServer creates root/gitops.git with the commits given (oldest first)
// on main, and serves it until close.
func newServer(ctx context.Context, root string, commits []seedCommit) (*server, error) {
	s := &server{root: root, bare: filepath.Join(root, "gitops.git")}
	if err := gitCmd(ctx, root, "init", "--quiet", "--bare", "-b", "main", s.bare); err != nil {
		return nil, err
	}
	for _, kv := range [][2]string{{"http.receivepack", "true"}, {"receive.denyNonFastForwards", "true"},
		{"receive.denyDeletes", "true"}, {"core.logAllRefUpdates", "always"}} {
		if err := gitCmd(ctx, s.bare, "config", kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	if err := s.installHook(); err != nil {
		return nil, err
	}
	if err := fastImport(ctx, s.bare, commits); err != nil {
		return nil, err
	}
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("git CLI: %w", err)
	}
	// The server's own messages (a push that lost the race for the ref's
	// lock, the hook's refusals) go to a log beside the repository.
	s.stderr, err = os.Create(filepath.Join(root, "http-backend.log"))
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	backend := &cgi.Handler{Path: gitBin, Args: []string{"http-backend"}, Stderr: s.stderr,
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + root}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/git-receive-pack") {
			s.pushes.Add(1)
		}
		backend.ServeHTTP(w, req)
	}))
	s.URL = s.srv.URL + "/gitops.git"
	return s, nil
}

func (s *server) close() {
	s.srv.Close()
	s.stderr.Close()
}

// hookLog is where the pre-receive hook records refused updates.
func (s *server) hookLog() string { return filepath.Join(s.root, "refused-updates.log") }

// installHook writes the pre-receive hook: an update that would rewind
// or delete a branch is recorded and refused.
func (s *server) installHook() error {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return fmt.Errorf("git CLI: %w", err)
	}
	script := fmt.Sprintf(`#!/bin/sh
while read old new ref; do
  if [ "$old" = %[1]s ]; then continue; fi
  if [ "$new" = %[1]s ] || ! %[2]q merge-base --is-ancestor "$old" "$new"; then
    echo "$ref $old $new" >> %[3]q
    echo "refused: $ref is not a fast-forward" >&2
    exit 1
  fi
done
`, zeroSHA, gitBin, s.hookLog())
	p := filepath.Join(s.bare, "hooks", "pre-receive")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("hooks: %w", err)
	}
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		return fmt.Errorf("pre-receive hook: %w", err)
	}
	return nil
}

// fastImport writes commits on main of the bare repository with one
// `git fast-import`, which seeds thousands of commits in seconds.
func fastImport(ctx context.Context, bare string, commits []seedCommit) error {
	cmd := exec.CommandContext(ctx, "git", "fast-import", "--quiet", "--done")
	cmd.Dir = bare
	cmd.Env = gitEnv(bare)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	in, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("fast-import: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("fast-import: %w", err)
	}
	werr := writeImport(in, commits)
	cerr := in.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("fast-import: %w\n%s", err, out.String())
	}
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("fast-import stream: %w", err)
	}
	return nil
}

// writeImport writes the fast-import stream of commits, one second apart.
func writeImport(w io.Writer, commits []seedCommit) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	data := func(b []byte) { fmt.Fprintf(bw, "data %d\n", len(b)); bw.Write(b); bw.WriteString("\n") }
	for i, c := range commits {
		fmt.Fprintf(bw, "commit refs/heads/main\ncommitter Platform Team <platform@example.com> %d +0000\n", when+int64(i))
		data([]byte(c.Message))
		for _, p := range slices.Sorted(maps.Keys(c.Files)) {
			fmt.Fprintf(bw, "M 100644 inline %s\n", p)
			data(c.Files[p])
		}
	}
	bw.WriteString("done\n")
	return bw.Flush()
}

// audit is what the server saw of the branch's updates.
type audit struct {
	// Updates counts the branch's updates after the seed (its reflog).
	Updates int
	// Rewinds are reflog updates whose old head is not an ancestor of the
	// new one; Refused are the updates the pre-receive hook refused.
	Rewinds, Refused []string
	// DenyNonFastForwards is the bare repository's setting.
	DenyNonFastForwards bool
}

// audit reads the branch's reflog and checks that every update was a
// fast-forward, with the parents of every commit reachable from main.
func (s *server) audit(ctx context.Context) (*audit, error) {
	a := &audit{}
	v, err := gitOut(ctx, s.bare, "config", "--bool", "receive.denyNonFastForwards")
	if err != nil {
		return nil, err
	}
	a.DenyNonFastForwards = strings.TrimSpace(v) == "true"
	if b, err := os.ReadFile(s.hookLog()); err == nil {
		a.Refused = strings.Split(strings.TrimSpace(string(b)), "\n")
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	out, err := gitOut(ctx, s.bare, "rev-list", "--parents", "main")
	if err != nil {
		return nil, err
	}
	parents := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		parents[f[0]] = f[1:]
	}
	log, err := os.ReadFile(filepath.Join(s.bare, "logs", "refs", "heads", "main"))
	if err != nil {
		return nil, fmt.Errorf("reflog of main: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] == zeroSHA {
			continue // the seed creating the branch
		}
		a.Updates++
		if !ancestor(parents, f[0], f[1]) {
			a.Rewinds = append(a.Rewinds, f[0][:12]+" → "+f[1][:12])
		}
	}
	return a, nil
}

// ancestor reports whether old is new or reachable from it in parents,
// which holds every commit reachable from the final head.
func ancestor(parents map[string][]string, old, new string) bool {
	seen := map[string]bool{new: true}
	queue := []string{new}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == old {
			return true
		}
		for _, p := range parents[c] {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return false
}

// FastForwardOnly says whether the audit proves that no update rewound
// the branch.
func (a *audit) FastForwardOnly() bool {
	return a.DenyNonFastForwards && len(a.Rewinds) == 0 && len(a.Refused) == 0
}

func gitEnv(home string) []string {
	return append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+home,
		"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.com",
		"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com")
}

func gitCmd(ctx context.Context, dir string, args ...string) error {
	_, err := gitOut(ctx, dir, args...)
	return err
}

// gitOut runs the git CLI in dir and returns its standard output.
func gitOut(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("git %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}
