package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/github"
	"github.com/canarybot/canarybot/pkg/github/webhook"
	"github.com/canarybot/canarybot/pkg/gitops"
	"github.com/canarybot/canarybot/pkg/registry/notify"
)

type serveOptions struct {
	reconcileOptions
	listen, apiURL                string
	repositories                  []string
	appID, installationID         int64
	privateKeyFile, privateKeyEnv string
	tokenEnv, secretEnv           string
	mergeMethod                   string
	revertNeedsApproval           bool
	sweep                         time.Duration
	leader                        leaderOptions
	// opsMux is the --metrics-listen port's mux, nil without one.
	opsMux *http.ServeMux
}

func newServe(g *globals) *cobra.Command {
	o := &serveOptions{}
	c := &cobra.Command{
		Use: "serve --dir DIR --prometheus URL --argocd-server HOST:PORT [--github-repository OWNER/NAME --repo URL --plan PATH] …",
		Short: "Run as a GitHub App: every plan of every installed repository; webhooks in, every step a pull request " +
			"with its evidence, merged when approved",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			reg, err := o.registry(cmd.Context(), log)
			if err != nil {
				return err
			}
			if o.plan == "" {
				return o.runFleet(cmd.Context(), log, reg)
			}
			return o.run(cmd.Context(), log, reg)
		},
	}
	f := c.Flags()
	o.addFlags(f)
	o.addEngineFlags(f)
	f.StringVar(&o.listen, "listen", ":8080", "address serving POST /webhooks/github, /metrics and /healthz")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "serve GET /metrics, GET /healthz and the status page (/, /api/v1/rollouts) "+
		"on this address, e.g. :9090, from the start: a --leader-elect standby answers there too (off when empty)")
	f.StringArrayVar(&o.repositories, "github-repository", nil, "a GitOps repository on GitHub, OWNER/NAME: "+
		"the one repository with --plan; with a token, repeat it for each repository to serve; an App serves every "+
		"repository of its installations that has a .canarybot/ directory")
	f.StringVar(&o.apiURL, "github-api-url", github.DefaultAPIURL, "GitHub REST API base URL (GitHub Enterprise: https://HOST/api/v3/)")
	f.Int64Var(&o.appID, "github-app-id", 0, "GitHub App ID")
	f.Int64Var(&o.installationID, "github-installation-id", 0, "GitHub App installation ID (with --plan only)")
	f.StringVar(&o.privateKeyFile, "github-private-key-file", "", "PEM file of the App's private key")
	f.StringVar(&o.privateKeyEnv, "github-private-key-env", "", "environment variable holding the App's PEM private key")
	f.StringVar(&o.tokenEnv, "github-token-env", "", "environment variable holding a token, instead of an App")
	f.StringVar(&o.secretEnv, "webhook-secret-env", "GITHUB_WEBHOOK_SECRET", "environment variable holding the webhook secret")
	f.StringVar(&o.mergeMethod, "merge-method", github.MergeSquash, "how canarybot merges its PRs: squash, merge or rebase")
	f.BoolVar(&o.revertNeedsApproval, "revert-needs-approval", false, "keep revert PRs open until a reviewer approves")
	f.IntVar(&o.workers, "workers", 16, "plans reconciled at once, across all repositories")
	f.DurationVar(&o.sweep, "sweep", 5*time.Minute, "how often to recover missed webhook deliveries")
	f.Lookup("repo").Usage = "with --plan, the GitOps repo URL; without it, clone URLs come from GitHub"
	f.Lookup("dir").Usage = "where clones are kept: the clone itself with --plan, else one per repository under it (required)"
	f.Lookup("plan").Usage = "drive only the CanaryPlan at this repo path of --github-repository; without it every plan of every served repository"
	o.leader.addFlags(f)
	for _, req := range []string{"dir", "prometheus", "argocd-server"} {
		_ = c.MarkFlagRequired(req)
	}
	return c
}

// auth reads the GitHub credentials the flags point at.
func (o *serveOptions) auth() (github.Auth, []byte, error) {
	a := github.Auth{APIURL: o.apiURL, AppID: o.appID, InstallationID: o.installationID}
	var errs []error
	switch {
	case o.privateKeyFile != "" && o.privateKeyEnv != "":
		errs = append(errs, errors.New("give --github-private-key-file or --github-private-key-env, not both"))
	case o.privateKeyFile != "":
		b, err := os.ReadFile(o.privateKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--github-private-key-file: %w", err))
		}
		a.PrivateKey = b
	case o.privateKeyEnv != "":
		a.PrivateKey = []byte(os.Getenv(o.privateKeyEnv))
	}
	if o.tokenEnv != "" {
		a.Token = os.Getenv(o.tokenEnv)
		if a.Token == "" {
			errs = append(errs, fmt.Errorf("--github-token-env %s: the variable is empty", o.tokenEnv))
		}
	}
	secret := []byte(os.Getenv(o.secretEnv))
	if len(secret) == 0 {
		errs = append(errs, fmt.Errorf("--webhook-secret-env %s: the variable is empty; set the App's webhook secret there", o.secretEnv))
	}
	switch o.mergeMethod {
	case github.MergeSquash, github.MergeMerge, github.MergeRebase:
	default:
		errs = append(errs, fmt.Errorf("--merge-method %q: want squash, merge or rebase", o.mergeMethod))
	}
	for _, r := range o.repositories {
		if owner, name, ok := strings.Cut(r, "/"); !ok || owner == "" || name == "" || strings.Contains(name, "/") {
			errs = append(errs, fmt.Errorf("--github-repository %q: want OWNER/NAME", r))
		}
	}
	errs = append(errs, o.checkMode(a), o.leader.check())
	return a, secret, errors.Join(errs...)
}

// checkMode checks the flags that depend on the mode: one plan of one
// repository (--plan), an App serving its installations, or a token
// serving the repositories given.
func (o *serveOptions) checkMode(a github.Auth) error {
	var errs []error
	app := a.AppID != 0 || a.InstallationID != 0 || len(a.PrivateKey) > 0
	switch {
	case o.plan != "":
		if len(o.repositories) != 1 {
			errs = append(errs, fmt.Errorf("--github-repository: with --plan give it once, got %d", len(o.repositories)))
		}
		if len(o.repos) != 1 {
			errs = append(errs, fmt.Errorf("--repo: with --plan give it once, got %d", len(o.repos)))
		}
		errs = append(errs, a.Validate())
	case len(o.repos) > 0:
		errs = append(errs, errors.New("--repo: serving every plan, clone URLs come from GitHub; give --repo only with --plan"))
	case app && a.Token != "":
		errs = append(errs, errors.New("give either a GitHub App (app ID, installation ID, private key) or a token, not both"))
	case app:
		if a.InstallationID != 0 {
			errs = append(errs, errors.New("--github-installation-id: an App serves every installation; give it only with --plan"))
		}
		if len(o.repositories) > 0 {
			errs = append(errs, errors.New("--github-repository: an App serves every repository of its installations that has a .canarybot/ directory; give it only with --plan or a token"))
		}
		if a.AppID <= 0 || len(a.PrivateKey) == 0 {
			errs = append(errs, errors.New("a GitHub App needs --github-app-id and its private key"))
		}
	case a.Token == "":
		errs = append(errs, errors.New("no GitHub credentials: give a GitHub App (app ID, private key) or a token"))
	case len(o.repositories) == 0:
		errs = append(errs, errors.New("--github-repository: with a token, name each repository to serve"))
	}
	return errors.Join(errs...)
}

func (o *serveOptions) run(ctx context.Context, log *slog.Logger, reg *prometheus.Registry) error {
	if err := o.checkPlan(); err != nil {
		return err
	}
	auth, secret, err := o.auth()
	if err != nil {
		return err
	}
	metrics, err := github.NewMetrics(reg)
	if err != nil {
		return err
	}
	sess, err := github.Connect(ctx, auth, &github.Transport{Metrics: metrics, Cache: github.NewETagCache(512)})
	if err != nil {
		return err
	}
	url, err := o.repo()
	if err != nil {
		return err
	}
	repo, err := gitops.Open(ctx, gitops.Options{URL: url, Branch: o.branch, Dir: o.dir, Logger: log,
		TokenSource: sess.GitToken, AuthorName: sess.Login, AuthorEmail: "canarybot@users.noreply.github.com"})
	if err != nil {
		return err
	}
	return o.serve(ctx, log, sess, repo, secret, reg)
}

// serve wires the bot and the engine over an open clone and runs both,
// with the HTTP listener, until ctx ends.
func (o *serveOptions) serve(ctx context.Context, log *slog.Logger, sess *github.Session, repo *gitops.Repo,
	secret []byte, reg *prometheus.Registry) error {
	plan, err := currentPlan(ctx, repo, o.plan)
	if err != nil {
		return err
	}
	owner, name, _ := strings.Cut(o.repositories[0], "/")
	ref := github.PlanRef{Name: plan.Metadata.Name}
	if src := plan.Spec.Model.Source.OCI; src != nil {
		ref.OCIRepository = strings.ToLower(src.Repository)
	}
	waker := notify.NewWaker()
	bot := github.NewBot(github.BotConfig{Session: sess, Owner: owner, Repo: name, Base: o.branch, WebhookSecret: secret,
		Plan: ref, Local: repo, MergeMethod: o.mergeMethod, RevertNeedsApproval: o.revertNeedsApproval,
		Status: func(ctx context.Context, _ string) (string, error) { return planStatus(ctx, repo, o.plan) },
		Wake:   waker.Wake, Log: log})
	rec, err := newRecorder(reg)
	if err != nil {
		return err
	}
	ad, err := o.adapters(log, rec)
	if err != nil {
		return err
	}
	defer ad.close()
	eng := ad.engine(bot.Publisher, repo.Contains, log)
	eng.PlanPath = o.plan
	eng.Pipeline = repoStages{o.repositories[0]: repo}
	eng.Approvals, eng.Signals, eng.Wake, eng.OnTick = bot.Publisher, bot.ChatOps, waker.C(), bot.OnTick(ctx)
	nots := newNotifiers(log, rec, o.notifySecretsDir)
	nots.add(o.repositories[0], githubWeb(o.apiURL, o.repositories[0]), repo, planCatalog(o.plan))
	eng.AfterTick = nots.afterTick(o.repositories[0], rec.AfterTick(o.repositories[0], plan.Metadata.Name))
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/github", bot.Handler)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if err := o.statusPage(log, oneRepo(o.repositories[0], repo, githubWeb(o.apiURL, o.repositories[0]))); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", o.listen, err)
	}
	srv := webhook.NewServer(mux) // read, write and idle timeouts: slow senders hold nothing for long
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	log.Info("serving GitHub webhooks", "addr", ln.Addr().String(), "repository", o.repositories[0], "plan", ref.Name, "as", sess.Login)
	return o.leader.run(ctx, log, func(ctx context.Context) error {
		go bot.Run(ctx, o.sweep)
		nots.primeAll(ctx)
		nots.start(ctx)
		return eng.Run(ctx)
	})
}

// planStatus is the one-line answer to /canarybot status, read from Git.
func planStatus(ctx context.Context, repo *gitops.Repo, planPath string) (string, error) {
	t, err := repo.Checkout(ctx)
	if err != nil {
		return "", err
	}
	plan, err := canary.ReadPlan(t, planPath)
	if err != nil {
		return "", err
	}
	st, err := repo.ReadState(ctx, t.Head, plan.Metadata.Name)
	if err != nil {
		return "", fmt.Errorf("read state of %s: %w", plan.Metadata.Name, err)
	}
	return canary.Summary(plan.Metadata.Name, st), nil
}
