package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/canarybot/canarybot/pkg/argocd"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/kustomize"
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
	poll                                time.Duration
	hooks                               hookOptions
}

func newReconcile(g *globals) *cobra.Command {
	o := &reconcileOptions{}
	c := &cobra.Command{
		Use:   "reconcile --repo URL --dir DIR --plan PATH --prometheus URL --argocd-server HOST:PORT",
		Short: "Drive one plan's rollout: watch the registry, commit each step, wait for Argo CD, judge the gates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			return o.run(cmd.Context(), log, g.stdout)
		},
	}
	f := c.Flags()
	o.addFlags(f)
	o.addEngineFlags(f)
	f.BoolVar(&o.autoApprove, "auto-approve", false, "approve pause-until-approved steps without a reviewer")
	f.BoolVar(&o.once, "once", false, "run one reconcile and exit")
	f.StringVar(&o.hooks.listen, "listen", "", "serve registry webhooks on this address (/hooks/registry, /hooks/mlflow)")
	f.StringVar(&o.hooks.registryToken, "registry-webhook-token-env", "", "environment variable holding the bearer token Docker Distribution sends")
	f.StringVar(&o.hooks.mlflowSecretEnv, "mlflow-webhook-secret-env", "", "environment variable holding the MLflow webhook secret")
	for _, req := range append(requiredGitFlags(), "prometheus", "argocd-server") {
		_ = c.MarkFlagRequired(req)
	}
	return c
}

// addEngineFlags registers the flags of the engine's adapters: metrics,
// Argo CD, registries and polling.
func (o *reconcileOptions) addEngineFlags(f *pflag.FlagSet) {
	f.StringVar(&o.prometheus, "prometheus", "", "Prometheus base URL (required)")
	f.StringVar(&o.argo.Server, "argocd-server", "", "argocd-server host:port (required)")
	f.StringVar(&o.argoTokenEnv, "argocd-token-env", "ARGOCD_AUTH_TOKEN", "environment variable holding the Argo CD token")
	f.BoolVar(&o.argo.PlainText, "argocd-plaintext", false, "talk to argocd-server without TLS")
	f.BoolVar(&o.argo.Insecure, "argocd-insecure", false, "skip argocd-server certificate verification")
	f.BoolVar(&o.argo.GRPCWeb, "argocd-grpc-web", false, "use grpc-web")
	f.BoolVar(&o.registryInsecure, "registry-insecure", false, "talk plain HTTP to the OCI registry")
	f.DurationVar(&o.poll, "poll", 30*time.Second, "longest wait between reconciles")
}

func (o *reconcileOptions) run(ctx context.Context, log *slog.Logger, out io.Writer) error {
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
	eng, closeEngine, err := o.newEngine(repo, repo.Contains, log)
	if err != nil {
		return err
	}
	defer closeEngine()
	eng.Approvals = &flagApprovals{auto: o.autoApprove, log: log}
	if o.once {
		r, err := eng.Tick(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %s (%s)\n", r.Plan, r.Decision.Action, r.Decision.Reason)
		return nil
	}
	if o.hooks.listen != "" {
		waker := notify.NewWaker()
		eng.Wake = waker.C()
		errc := make(chan error, 1)
		go func() { errc <- serveHooks(ctx, o.hooks, plan, waker.Wake, log) }()
		select {
		case err := <-errc:
			if err != nil {
				return err
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	return eng.Run(ctx)
}

// newEngine wires an engine over repo with the adapters the flags name;
// the caller sets Approvals (and Signals, Wake, OnTick as it needs).
func (o *reconcileOptions) newEngine(repo canary.Repo, contains func(context.Context, string, string) (bool, error),
	log *slog.Logger) (*canary.Engine, func(), error) {
	o.argo.Token = os.Getenv(o.argoTokenEnv)
	argo, err := argocd.NewClient(o.argo)
	if err != nil {
		return nil, nil, err
	}
	q, err := gates.NewPrometheusAPI(o.prometheus, nil)
	if err != nil {
		_ = argo.Close()
		return nil, nil, fmt.Errorf("--prometheus: %w", err)
	}
	var ociOpts []oci.Option
	if o.registryInsecure {
		ociOpts = append(ociOpts, oci.WithInsecure())
	}
	renderer := kustomize.NewRenderer(kustomize.NewBuilder())
	eng := &canary.Engine{
		PlanPath: o.plan, Repo: repo, Renderer: renderer,
		Sync:  &argocd.Waiter{Source: argo, Contains: contains},
		Gates: gates.ForPrometheus(q, log),
		Artifacts: registry.Sources{
			OCI:    oci.NewWatcher(append(ociOpts, oci.WithLogger(log))...),
			MLflow: mlflow.NewWatcher(mlflow.WithLogger(log)),
		},
		Stable: renderer.Stable,
		Clock:  canary.SystemClock{}, Log: log, Poll: o.poll, MinPoll: time.Second,
	}
	return eng, func() { _ = argo.Close() }, nil
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
