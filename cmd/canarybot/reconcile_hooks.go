package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/registry/mlflow"
	"github.com/canarybot/canarybot/pkg/registry/notify"
	"github.com/canarybot/canarybot/pkg/statuspage"
)

// hookOptions are reconcile's webhook receivers.
type hookOptions struct {
	listen          string
	registryToken   string // env var name
	insecure        bool
	mlflowSecretEnv string
	// status, when set, lists the repositories the status page at / shows.
	status func() []statuspage.Repo
}

// hookWaker wakes the plans an event concerns and reports whether any
// does: oci by repository path (as Distribution names it), mlflow by
// registered model name.
type hookWaker struct {
	oci, mlflow func(string) bool
}

// check refuses to serve /hooks/registry without a token unless the
// operator said so: anyone who reaches the port could wake the bot.
func (o hookOptions) check() (token string, err error) {
	switch {
	case o.registryToken != "":
		token = os.Getenv(o.registryToken)
		if token == "" {
			return "", fmt.Errorf("--registry-webhook-token-env %s: the variable is empty", o.registryToken)
		}
		return token, nil
	case o.insecure:
		return "", nil
	}
	return "", errors.New("--listen serves /hooks/registry, which needs a bearer token: " +
		"set --registry-webhook-token-env (and the same token in the registry's notification endpoint), " +
		"or pass --registry-webhook-insecure to accept unauthenticated notifications")
}

// startHooks serves /hooks/registry (Docker Distribution notifications)
// and, with a secret, /hooks/mlflow (MLflow model-registry webhooks) until
// ctx ends. An accepted event wakes the plans it concerns at once, instead
// of at their next poll. With plans given, only their registries are
// watched; with none, every event is offered to w.
func startHooks(ctx context.Context, o hookOptions, plans []*canary.CanaryPlan, w hookWaker, log *slog.Logger) error {
	token, err := o.check()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	dist := &notify.DistributionHandler{WakeRepository: w.oci, Token: token, Log: log}
	models := []string(nil)
	for _, p := range plans {
		if src := p.Spec.Model.Source.OCI; src != nil {
			dist.Repositories = append(dist.Repositories, src.Repository)
		}
		if src := p.Spec.Model.Source.MLflow; src != nil {
			models = append(models, src.Model)
		}
	}
	if plans != nil {
		watched := dist.Repositories
		dist.WakeRepository = func(path string) bool {
			return slices.ContainsFunc(watched, func(r string) bool { return notify.RepositoryPath(r) == path }) && w.oci(path)
		}
	}
	mux.Handle("/hooks/registry", dist)
	if o.mlflowSecretEnv != "" {
		secret := os.Getenv(o.mlflowSecretEnv)
		if secret == "" {
			return fmt.Errorf("--mlflow-webhook-secret-env %s: the variable is empty", o.mlflowSecretEnv)
		}
		wake := w.mlflow
		if plans != nil {
			wake = func(m string) bool { return slices.Contains(models, m) && w.mlflow(m) }
		}
		h, err := mlflow.NewWebhookHandler(mlflow.WebhookConfig{Secret: []byte(secret), WakeModel: wake,
			Clock: canary.SystemClock{}, Log: log})
		if err != nil {
			return err
		}
		mux.Handle("/hooks/mlflow", h)
	}
	if o.status != nil {
		if err := registerStatusPage(mux, log, o.status); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen for webhooks on %s: %w", o.listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	log.Info("serving webhooks", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("webhook server stopped", "err", err)
		}
	}()
	return nil
}

// currentPlan reads the plan at the branch head, for wiring that needs it
// once at start (the engine rereads it on every tick).
func currentPlan(ctx context.Context, repo canary.Repo, path string) (*canary.CanaryPlan, error) {
	t, err := repo.Checkout(ctx)
	if err != nil {
		return nil, fmt.Errorf("checkout: %w", err)
	}
	return canary.ReadPlan(t, path)
}
