package fakegithub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// gitCLI runs the real git CLI on the server's bare repositories, isolated
// from the machine's git configuration.
type gitCLI struct {
	bin  string
	home string
	tmp  string // scratch index files
	seq  int
}

// gitError is a failed git command; exit is its exit status.
type gitError struct {
	args   []string
	exit   int
	stderr string
	err    error
}

func (e *gitError) Error() string {
	return fmt.Sprintf("git %s: %v: %s", strings.Join(e.args, " "), e.err, strings.TrimSpace(e.stderr))
}

func (e *gitError) Unwrap() error { return e.err }

// exitCode is err's git exit status: 0 for nil, -1 when err is not a
// git exit.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ge *gitError
	if errors.As(err, &ge) {
		return ge.exit
	}
	return -1
}

func (g *gitCLI) init(root string) error {
	for _, d := range []string{root, g.home, g.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	return nil
}

// env is the environment of every git process.
func (g *gitCLI) env() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + g.home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + filepath.Join(g.home, "gitconfig"),
		"LC_ALL=C",
	}
}

// gitRun is one git invocation.
type gitRun struct {
	dir   string // the bare repository (GIT_DIR)
	stdin []byte
	env   []string
}

func (g *gitCLI) run(ctx context.Context, r gitRun, args ...string) (string, error) {
	out, err := g.raw(ctx, r, args...)
	return strings.TrimRight(string(out), "\n"), err
}

// raw runs git and returns its stdout untouched.
func (g *gitCLI) raw(ctx context.Context, r gitRun, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, g.bin, args...)
	cmd.Dir = r.dir
	cmd.Env = append(append(g.env(), "GIT_DIR="+r.dir), r.env...)
	if r.stdin != nil {
		cmd.Stdin = bytes.NewReader(r.stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		ge := &gitError{args: args, exit: -1, stderr: stderr.String(), err: err}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ge.exit = ee.ExitCode()
		}
		return nil, ge
	}
	return stdout.Bytes(), nil
}

// out runs git in dir and returns its trimmed stdout.
func (g *gitCLI) out(ctx context.Context, dir string, args ...string) (string, error) {
	return g.run(ctx, gitRun{dir: dir}, args...)
}

// scratchIndex is a fresh path for a temporary index file.
func (g *gitCLI) scratchIndex() string {
	g.seq++
	return filepath.Join(g.tmp, "index-"+strconv.Itoa(g.seq))
}

// identityEnv sets a commit's author and committer, dated at.
func identityEnv(author, committer signature) []string {
	return []string{
		"GIT_AUTHOR_NAME=" + author.name, "GIT_AUTHOR_EMAIL=" + author.email,
		"GIT_AUTHOR_DATE=" + gitDate(author.when),
		"GIT_COMMITTER_NAME=" + committer.name, "GIT_COMMITTER_EMAIL=" + committer.email,
		"GIT_COMMITTER_DATE=" + gitDate(committer.when),
	}
}

// signature is a commit author or committer.
type signature struct {
	name, email string
	when        time.Time
}

func gitDate(t time.Time) string { return fmt.Sprintf("@%d +0000", t.Unix()) }

// resolve returns the object name rev names, peeled to kind ("commit",
// "tree", "blob"), or "" when there is none.
func (g *gitCLI) resolve(ctx context.Context, dir, rev, kind string) (string, error) {
	out, err := g.out(ctx, dir, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{"+kind+"}")
	if exitCode(err) == 1 || exitCode(err) == 128 {
		return "", nil
	}
	return out, err
}

// objectType is the type of the object rev names, or "" when there is
// none.
func (g *gitCLI) objectType(ctx context.Context, dir, sha string) (string, error) {
	if strings.HasPrefix(sha, "-") {
		return "", nil
	}
	out, err := g.out(ctx, dir, "cat-file", "-t", sha)
	if exitCode(err) == 128 {
		return "", nil
	}
	return out, err
}

// shaType is the type of object sha (40 hex digits, as GitHub's API
// wants), or "" when sha is no such object.
func (g *gitCLI) shaType(ctx context.Context, dir, sha string) (string, error) {
	if !isSHA(sha) {
		return "", nil
	}
	return g.objectType(ctx, dir, sha)
}

// refSHA is the commit a ref (refs/heads/x) points at, or "".
func (g *gitCLI) refSHA(ctx context.Context, dir, ref string) (string, error) {
	out, err := g.out(ctx, dir, "rev-parse", "--verify", "--quiet", ref)
	if exitCode(err) == 1 {
		return "", nil
	}
	return out, err
}

// isAncestor reports whether a is an ancestor of (or equal to) b.
func (g *gitCLI) isAncestor(ctx context.Context, dir, a, b string) (bool, error) {
	_, err := g.out(ctx, dir, "merge-base", "--is-ancestor", a, b)
	if exitCode(err) == 1 {
		return false, nil
	}
	return err == nil, err
}

// updateRef moves ref from old ("" for a new ref) to sha, atomically.
func (g *gitCLI) updateRef(ctx context.Context, dir, ref, sha, old string) error {
	if old == "" {
		old = strings.Repeat("0", 40)
	}
	_, err := g.out(ctx, dir, "update-ref", ref, sha, old)
	return err
}

// branches maps each branch name to its commit.
func (g *gitCLI) branches(ctx context.Context, dir string) (map[string]string, error) {
	out, err := g.out(ctx, dir, "for-each-ref", "--format=%(refname:lstrip=2) %(objectname)", "refs/heads/")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if name, sha, ok := strings.Cut(line, " "); ok {
			m[name] = sha
		}
	}
	return m, nil
}

func isSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
