package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/registry/mlflow"
	"github.com/canarybot/canarybot/pkg/registry/notify"
)

// hookOptions are reconcile's webhook receivers.
type hookOptions struct {
	listen          string
	registryToken   string // env var name
	mlflowSecretEnv string
}

// serveHooks serves /hooks/registry (Docker Distribution notifications)
// and, with a secret, /hooks/mlflow (MLflow model-registry webhooks). Each
// accepted event for the plan's model wakes the engine at once, instead of
// at its next poll. It returns when ctx ends.
func serveHooks(ctx context.Context, o hookOptions, plan *canary.CanaryPlan, wake func(), log *slog.Logger) error {
	mux := http.NewServeMux()
	if src := plan.Spec.Model.Source.OCI; src != nil {
		mux.Handle("/hooks/registry", &notify.DistributionHandler{
			Repositories: []string{src.Repository}, Wake: wake, Token: os.Getenv(o.registryToken), Log: log})
	}
	if src := plan.Spec.Model.Source.MLflow; src != nil && o.mlflowSecretEnv != "" {
		secret := os.Getenv(o.mlflowSecretEnv)
		if secret == "" {
			return fmt.Errorf("--mlflow-webhook-secret-env %s: the variable is empty", o.mlflowSecretEnv)
		}
		h, err := mlflow.NewWebhookHandler(mlflow.WebhookConfig{Secret: []byte(secret), Models: []string{src.Model},
			Wake: wake, Clock: canary.SystemClock{}, Log: log})
		if err != nil {
			return err
		}
		mux.Handle("/hooks/mlflow", h)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen for webhooks on %s: %w", o.listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	log.Info("serving webhooks", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve webhooks: %w", err)
	}
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
