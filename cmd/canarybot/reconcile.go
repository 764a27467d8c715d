package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/canarybot/canarybot/pkg/argocd"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/kustomize"
	"github.com/canarybot/canarybot/pkg/metrics"
	notifications "github.com/canarybot/canarybot/pkg/notify"
	"github.com/canarybot/canarybot/pkg/redact"
	"github.com/canarybot/canarybot/pkg/registry"
	"github.com/canarybot/canarybot/pkg/registry/mlflow"
	"github.com/canarybot/canarybot/pkg/registry/notify"
	"github.com/canarybot/canarybot/pkg/registry/oci"
)

type reconcileOptions struct {
	gitFlags
	prometheus                          string
	argo                                argocd.ClientOptions
	argoTokenEnv                        string
	registryInsecure, autoApprove, once bool
	notifySecretsDir                    string
	poll, minPoll                       time.Duration
	workers                             int
	hooks                               hookOptions
	leader                              leaderOptions
	metricsListen                       string
}

func newReconcile(g *globals) *cobra.Command {
	o := &reconcileOptions{}
	c := &cobra.Command{
		Use: "reconcile --repo URL [--repo URL…] --dir DIR [--plan PATH] --prometheus URL --argocd-server HOST:PORT",
		Short: "Drive rollouts: every plan under .canarybot/plans/ of each --repo (or one --plan): " +
			"watch the registry, commit each step, wait for Argo CD, judge the gates",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			if o.hooks.listen != "" {
				if _, err := o.hooks.check(); err != nil {
					return err
				}
			}
			if err := o.leader.check(); err != nil {
				return err
			}
			if o.once && o.leader.enabled {
				return errLeaderElectOnce
			}
			rec, err := o.recorder(cmd.Context(), log)
			if err != nil {
				return err
			}
			return o.leader.run(cmd.Context(), log, func(ctx context.Context) error {
				if o.plan == "" {
					return o.runFleet(ctx, log, rec, g.stdout)
				}
				return o.run(ctx, log, rec, g.stdout)
			})
		},
	}
	f := c.Flags()
	o.addFlags(f)
	o.addEngineFlags(f)
	o.leader.addFlags(f)
	f.Lookup("repo").Usage = "GitOps repo URL: file://, a local path, or http(s)://; repeat it to serve several (required)"
	f.Lookup("dir").Usage = "where clones are kept between runs: the clone itself with --plan, else one clone per --repo under it (required)"
	f.Lookup("plan").Usage = "drive only the CanaryPlan at this repo path (one --repo); without it every plan the repos hold is driven"
	f.BoolVar(&o.autoApprove, "auto-approve", false, "approve pause-until-approved steps without a reviewer")
	f.BoolVar(&o.once, "once", false, "run one reconcile of every plan and exit")
	f.IntVar(&o.workers, "workers", 16, "plans reconciled at once, across all repos")
	f.StringVar(&o.hooks.listen, "listen", "", "serve registry webhooks (/hooks/registry, /hooks/mlflow) and the status page (/) on this address")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "serve GET /metrics (Prometheus) and GET /healthz on this address, e.g. :9090 (off when empty)")
	f.StringVar(&o.hooks.registryToken, "registry-webhook-token-env", "", "environment variable holding the bearer token Docker Distribution sends (required with --listen)")
	f.BoolVar(&o.hooks.insecure, "registry-webhook-insecure", false, "with --listen, accept registry notifications without a token")
	f.StringVar(&o.hooks.mlflowSecretEnv, "mlflow-webhook-secret-env", "", "environment variable holding the MLflow webhook secret")
	for _, req := range append(requiredGitFlags(), "prometheus", "argocd-server") {
		_ = c.MarkFlagRequired(req)
	}
	return c
}

// addEngineFlags registers the flags of the engine's adapters: metrics,
// Argo CD, registries and polling.
func (o *reconcileOptions) addEngineFlags(f *pflag.FlagSet) {
	f.StringVar(&o.notifySecretsDir, "notification-secrets-dir", notifications.DefaultSecretsDir,
		"the only `DIR` whose files plans may name as notification secrets (env: only CANARYBOT_NOTIFY_* variables)")
	f.StringVar(&o.prometheus, "prometheus", "", "Prometheus base URL (required)")
	f.StringVar(&o.argo.Server, "argocd-server", "", "argocd-server host:port (required)")
	f.StringVar(&o.argoTokenEnv, "argocd-token-env", "ARGOCD_AUTH_TOKEN", "environment variable holding the Argo CD token")
	f.BoolVar(&o.argo.PlainText, "argocd-plaintext", false, "talk to argocd-server without TLS")
	f.BoolVar(&o.argo.Insecure, "argocd-insecure", false, "skip argocd-server certificate verification")
	f.BoolVar(&o.argo.GRPCWeb, "argocd-grpc-web", false, "use grpc-web")
	f.BoolVar(&o.registryInsecure, "registry-insecure", false, "talk plain HTTP to the OCI registry")
	f.DurationVar(&o.poll, "poll", 30*time.Second, "longest wait between reconciles")
	f.DurationVar(&o.minPoll, "min-poll", time.Second, "shortest wait between reconciles of a plan, and between fetches of a repo")
}

func (o *reconcileOptions) run(ctx context.Context, log *slog.Logger, rec *metrics.Recorder, out io.Writer) error {
	if err := o.checkPlan(); err != nil {
		return err
	}
	repo, err := o.open(ctx, log, "canarybot", "canarybot@users.noreply.github.com")
	if err != nil {
		return err
	}
	plan, err := currentPlan(ctx, repo, o.plan) // refuse a bad plan before dialling anything
	if err != nil {
		return err
	}
	ad, err := o.adapters(log, rec)
	if err != nil {
		return err
	}
	defer ad.close()
	eng := ad.engine(repo, repo.Contains, log)
	eng.PlanPath = o.plan
	eng.Pipeline = repoStages{redact.URL(o.repos[0]): repo}
	nots := newNotifiers(log, rec, o.notifySecretsDir)
	nots.add(redact.URL(o.repos[0]), remoteWeb(o.repos[0]), repo, planCatalog(o.plan))
	eng.AfterTick = nots.afterTick(redact.URL(o.repos[0]), rec.AfterTick(redact.URL(o.repos[0]), plan.Metadata.Name))
	eng.Approvals = &flagApprovals{auto: o.autoApprove, log: log}
	if o.once {
		nots.once(ctx) // a first run starts the cursors before this run's transition
		r, err := eng.Tick(ctx)
		if err != nil {
			return err
		}
		nots.once(ctx)
		fmt.Fprintf(out, "%s: %s (%s)\n", r.Plan, r.Decision.Action, redact.URL(r.Decision.Reason))
		return nil
	}
	if o.hooks.listen != "" {
		waker := notify.NewWaker()
		eng.Wake = waker.C()
		w := hookWaker{oci: func(string) bool { waker.Wake(); return true }, mlflow: func(string) bool { waker.Wake(); return true }}
		o.hooks.status = oneRepo(redact.URL(o.repos[0]), repo, remoteWeb(o.repos[0]))
		if err := startHooks(ctx, o.hooks, []*canary.CanaryPlan{plan}, w, log); err != nil {
			return err
		}
	}
	nots.primeAll(ctx)
	nots.start(ctx)
	return eng.Run(ctx)
}

// adapters are the engine's edges shared by every plan of the process:
// one Argo CD client, one Prometheus API, one watcher per registry kind,
// one renderer, one metrics recorder.
type adapters struct {
	o        *reconcileOptions
	rec      *metrics.Recorder
	argo     *argocd.Client
	q        promv1.API
	sources  registry.Sources
	renderer *kustomize.Renderer
}

func (o *reconcileOptions) adapters(log *slog.Logger, rec *metrics.Recorder) (*adapters, error) {
	o.argo.Token = os.Getenv(o.argoTokenEnv)
	argo, err := argocd.NewClient(o.argo)
	if err != nil {
		return nil, err
	}
	q, err := gates.NewPrometheusAPI(o.prometheus, nil)
	if err != nil {
		_ = argo.Close()
		return nil, fmt.Errorf("--prometheus: %w", err)
	}
	var ociOpts []oci.Option
	if o.registryInsecure {
		ociOpts = append(ociOpts, oci.WithInsecure())
	}
	return &adapters{o: o, rec: rec, argo: argo, q: q, renderer: kustomize.NewRenderer(kustomize.NewBuilder()),
		sources: registry.Sources{
			OCI:    oci.NewWatcher(append(ociOpts, oci.WithLogger(log))...),
			MLflow: mlflow.NewWatcher(mlflow.WithLogger(log)),
		}}, nil
}

func (a *adapters) close() { _ = a.argo.Close() }

// engine wires an engine over repo, its registry look-ups counted in
// metrics; the caller sets what picks the plan, Approvals and AfterTick
// (and Signals, Wake, OnTick as it needs).
func (a *adapters) engine(repo canary.Repo, contains func(context.Context, string, string) (bool, error),
	log *slog.Logger) *canary.Engine {
	return &canary.Engine{
		Repo: repo, Renderer: a.renderer,
		Sync:      &argocd.Waiter{Source: a.argo, Contains: contains},
		Gates:     gates.ForPrometheus(a.q, log),
		Artifacts: a.rec.Artifacts(a.sources),
		Stable:    a.renderer.Stable,
		Clock:     canary.SystemClock{}, Log: log, Poll: a.o.poll, MinPoll: a.o.minPoll,
	}
}

// flagApprovals approves every step when --auto-approve is set, and
// otherwise leaves pause-until-approved steps waiting for a reviewer.
type flagApprovals struct {
	auto bool
	log  *slog.Logger
}

func (a *flagApprovals) Approved(context.Context, string, int, canary.Artifact) (bool, error) {
	return a.auto, nil
}

func (a *flagApprovals) Request(_ context.Context, req canary.ApprovalRequest) error {
	a.log.Info("step waits for approval; without the GitHub App, rerun with --auto-approve to approve it",
		"plan", req.Plan, "step", req.Step, "artifact", req.Candidate.URI)
	return nil
}
