package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/canary/canarytest"
	"github.com/canarybot/canarybot/pkg/gitops"
)

// bareRepo is a real bare repository with a work clone for human commits,
// both driven by the git CLI.
type bareRepo struct {
	t          *testing.T
	bare, work string
	home       string
}

func newBareRepo(t *testing.T) *bareRepo {
	t.Helper()
	root := t.TempDir()
	b := &bareRepo{t: t, bare: filepath.Join(root, "remote.git"), work: filepath.Join(root, "work"), home: t.TempDir()}
	b.git(root, "init", "--bare", "--quiet", "-b", "main", b.bare)
	b.git(root, "clone", "--quiet", b.bare, b.work)
	return b
}

func (b *bareRepo) git(dir string, args ...string) string {
	b.t.Helper()
	out, err := b.gitErr(dir, args...)
	if err != nil {
		b.t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (b *bareRepo) gitErr(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+b.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+filepath.Join(b.home, "gitconfig"),
		"GIT_AUTHOR_NAME=Human", "GIT_AUTHOR_EMAIL=human@example.com",
		"GIT_COMMITTER_NAME=Human", "GIT_COMMITTER_EMAIL=human@example.com")
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return strings.TrimSpace(string(out)), err
}

// humanCommit pushes files to main as a person would, on top of the
// remote's main.
func (b *bareRepo) humanCommit(msg string, files map[string]string) string {
	b.t.Helper()
	if b.git(b.work, "ls-remote", "origin", "refs/heads/main") != "" {
		b.git(b.work, "pull", "--quiet", "--ff-only", "origin", "main")
	}
	for p, content := range files {
		full := filepath.Join(b.work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.git(b.work, "add", "-A")
	b.git(b.work, "commit", "--quiet", "-m", msg)
	b.git(b.work, "push", "--quiet", "origin", "HEAD:refs/heads/main")
	return b.git(b.work, "rev-parse", "HEAD")
}

// cliRefs is the RefStore over the bare repository: `git update-ref` is
// the compare-and-swap a push of the ref is on a remote.
type cliRefs struct{ b *bareRepo }

func (r cliRefs) RemoteRef(_ context.Context, ref string) (string, error) {
	out, err := r.b.gitErr(r.b.bare, "for-each-ref", "--format=%(objectname)", ref)
	return out, err
}

func (r cliRefs) UpdateRef(ctx context.Context, ref, old, new string) error {
	if cur, err := r.RemoteRef(ctx, ref); err == nil && cur == new {
		return nil
	}
	if old == "" {
		old = strings.Repeat("0", 40)
	}
	if _, err := r.b.gitErr(r.b.bare, "update-ref", ref, new, old); err != nil {
		return fmt.Errorf("%w: %w", gitops.ErrNonFastForward, err)
	}
	return nil
}

// rollout writes transitions as the engine does: Apply, CommitMessage,
// the state file, one gitops Transact each.
type rollout struct {
	t    *testing.T
	repo *gitops.Repo
	plan *canary.CanaryPlan
	st   *canary.RolloutState
}

func (r *rollout) do(d canary.Decision) string {
	r.t.Helper()
	next := canary.Apply(r.plan, r.st, d, t0)
	ch := canary.CommitMessage(r.plan, r.st, next, d)
	b, err := canary.MarshalState(next)
	if err != nil {
		r.t.Fatal(err)
	}
	ch.Files = map[string][]byte{canary.StatePath(r.plan.Metadata.Name): b}
	res, err := r.repo.Transact(context.Background(), func(context.Context, canary.Tree) (*canary.Change, error) { return &ch, nil })
	if err != nil {
		r.t.Fatal(err)
	}
	r.st = next
	return res.SHA
}

// receiver records what it accepts, in order; down, it answers 503.
type receiver struct {
	t      *testing.T
	secret string
	down   atomic.Bool
	// failOnce, when set, is an id refused (503) the first time it comes.
	failOnce string
	mu       sync.Mutex
	ids      []string
	bodies   map[string]map[string]any
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if rc.down.Load() {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	id := r.Header.Get(HeaderDelivery)
	rc.mu.Lock()
	fail := id != "" && id == rc.failOnce
	if fail {
		rc.failOnce = ""
	}
	rc.mu.Unlock()
	if fail {
		http.Error(w, "flaky", http.StatusBadGateway)
		return
	}
	if rc.secret != "" && !Verify([]byte(rc.secret), body, r.Header.Get(HeaderSignature)) {
		rc.t.Errorf("delivery %s: bad signature", id)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		rc.t.Errorf("delivery: %v", err)
	}
	if rc.secret == "" { // Slack: the id is in the context line
		id = slackID(doc)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.ids = append(rc.ids, id)
	rc.bodies[id] = doc
}

// slackID reads the event id back from a Slack message's context block.
func slackID(msg map[string]any) string {
	blocks, _ := msg["blocks"].([]any)
	last, _ := blocks[len(blocks)-1].(map[string]any)
	elems, _ := last["elements"].([]any)
	text, _ := elems[0].(map[string]any)["text"].(string)
	return text[strings.LastIndex(text, " · ")+len(" · "):]
}

func (rc *receiver) got() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.ids...)
}

const deliveryPlan = `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: qwen}
spec:
  model: {name: qwen, source: {oci: {repository: ghcr.io/acme/qwen}}}
  traffic: {mode: kserve, kserve: {inferenceService: qwen}}
  overlay: manifests/overlays/qwen
  argocd: {application: qwen}
  steps:
  - setWeight: 10
  - analysis: {gates: [latency]}
  - pause: {untilApproved: true}
  - setWeight: 50
  gates:
  - name: latency
    threshold: {query: up, successCondition: result < 1.2}
`

// quietPlan turns notifications off for itself.
const quietPlan = `apiVersion: canarybot.dev/v1alpha1
kind: CanaryPlan
metadata: {name: quiet}
spec:
  model: {name: quiet, source: {oci: {repository: ghcr.io/acme/quiet}}}
  traffic: {mode: kserve, kserve: {inferenceService: quiet}}
  overlay: manifests/overlays/quiet
  argocd: {application: quiet}
  steps: [{setWeight: 100}]
  notifications: []
`

// world is a GitOps remote whose config sends every event to a signed
// webhook ("hooks") and some to Slack ("team-slack"), both local
// receivers; and a notifier over a clone of it.
type world struct {
	t           *testing.T
	remote      *bareRepo
	repo        *gitops.Repo
	qwen, quiet *rollout
	hooks       *receiver
	slack       *receiver
	slackSrv    *httptest.Server
	logs        *syncBuffer
	metrics     *countMetrics
	secrets     string // the directory secret files are read from
	// wantHooks and wantSlack are the event ids each receiver should
	// have got so far, in order.
	wantHooks, wantSlack []string
}

const (
	hookSecret = "hook-secret-0f1e2d3c"
	slackToken = "T0001/B0002/slackSecretToken"
)

func newWorld(t *testing.T) *world {
	w := &world{t: t, remote: newBareRepo(t), logs: &syncBuffer{}, metrics: newCountMetrics()}
	w.hooks = &receiver{t: t, secret: hookSecret, bodies: map[string]map[string]any{}}
	w.slack = &receiver{t: t, bodies: map[string]map[string]any{}}
	hookSrv := httptest.NewServer(w.hooks)
	t.Cleanup(hookSrv.Close)
	w.slackSrv = httptest.NewServer(w.slack)
	t.Cleanup(w.slackSrv.Close)
	t.Setenv("CANARYBOT_NOTIFY_TEST_SLACK_WEBHOOK", w.slackSrv.URL+"/services/"+slackToken)
	w.secrets = t.TempDir()
	secretFile := filepath.Join(w.secrets, "hook-secret")
	if err := os.WriteFile(secretFile, []byte(hookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`apiVersion: canarybot.dev/v1alpha1
kind: RepositoryConfig
spec:
  notifications:
  - name: hooks
    webhook:
      url: %s/canarybot
      secretFrom: {file: %s}
  - name: team-slack
    on: [started, awaitingApproval, promoted, reverted, planInvalid]
    slack:
      webhookURLFrom: {env: CANARYBOT_NOTIFY_TEST_SLACK_WEBHOOK}
`, hookSrv.URL, secretFile)
	w.remote.humanCommit("seed", map[string]string{canary.ConfigPath: config,
		".canarybot/plans/qwen.yaml": deliveryPlan, ".canarybot/plans/quiet.yaml": quietPlan})
	var err error
	w.repo, err = gitops.Open(context.Background(), gitops.Options{URL: w.remote.bare, Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	qwen, err := canary.ParsePlan([]byte(deliveryPlan))
	if err != nil {
		t.Fatal(err)
	}
	quiet, err := canary.ParsePlan([]byte(quietPlan))
	if err != nil {
		t.Fatal(err)
	}
	w.qwen = &rollout{t: t, repo: w.repo, plan: qwen, st: canary.NewState("qwen", v1)}
	w.quiet = &rollout{t: t, repo: w.repo, plan: quiet, st: canary.NewState("quiet", v1)}
	return w
}

// notifier is a new Notifier over repo, as a restarted bot has; its
// cursors are refs on the remote, moved by gitops over receive-pack.
func (w *world) notifier(repo *gitops.Repo) *Notifier {
	n, err := New(Config{Repository: "acme/gitops", Source: GitSource{R: repo}, Cursors: RefCursors{Refs: repo},
		Secrets: EnvAndFiles{Dir: w.secrets},
		Clock:   canarytest.NewManualClock(t0), Metrics: w.metrics,
		Log: slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

// pass fetches, as the fleet does before poking, and runs one pass.
func (w *world) pass(n *Notifier, repo *gitops.Repo) error {
	w.t.Helper()
	if _, err := repo.Fetch(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	err := n.Pass(context.Background())
	if err != nil {
		n.cfg.Log.Warn("pass failed", "err", err) // as Run logs it
	}
	return err
}

func (w *world) cursor(channel string) string {
	w.t.Helper()
	sha, err := cliRefs{w.remote}.RemoteRef(context.Background(), CursorRef(channel))
	if err != nil {
		w.t.Fatal(err)
	}
	return sha
}

func ids(sha string, events ...string) []string {
	var out []string
	for _, e := range events {
		out = append(out, sha+"/"+e)
	}
	return out
}

var v3 = canary.Artifact{URI: "oci://ghcr.io/acme/qwen@sha256:3333333333333333333333333333333333333333333333333333333333333333", Version: "3.0.0"}

// want adds commit c's event to the webhook's expected ids, and
// slackEvent ("" for none) to Slack's.
func (w *world) want(c, event, slackEvent string) {
	w.wantHooks = append(w.wantHooks, c+"/"+event)
	if slackEvent != "" {
		w.wantSlack = append(w.wantSlack, c+"/"+slackEvent)
	}
}

// check compares what each receiver got with what it should have.
func (w *world) check(when string) {
	w.t.Helper()
	hooks, slack := w.wantHooks, w.wantSlack
	if got := w.hooks.got(); !reflect.DeepEqual(got, hooks) {
		w.t.Errorf("%s: the webhook got\n  %s\nwant\n  %s", when, strings.Join(got, "\n  "), strings.Join(hooks, "\n  "))
	}
	if got := w.slack.got(); !reflect.DeepEqual(got, slack) {
		w.t.Errorf("%s: Slack got\n  %s\nwant\n  %s", when, strings.Join(got, "\n  "), strings.Join(slack, "\n  "))
	}
}
