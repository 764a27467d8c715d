package argocd

import (
	"context"
	"fmt"
	"io"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient"
	applicationpkg "github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"google.golang.org/grpc"
)

// appService is the slice of Argo CD's ApplicationService canarybot uses.
type appService interface {
	Get(ctx context.Context, in *applicationpkg.ApplicationQuery, opts ...grpc.CallOption) (*v1alpha1.Application, error)
}

// ClientOptions selects an Argo CD API server.
type ClientOptions struct {
	// Server is host:port of argocd-server.
	Server string
	Token  string
	// PlainText disables TLS; Insecure skips certificate verification.
	PlainText, Insecure bool
	// GRPCWeb speaks grpc-web over HTTP/1.1, for proxies that need it.
	GRPCWeb bool
	// AppNamespace is the Applications' namespace, when not Argo CD's own.
	AppNamespace string
}

// Client reads Applications through Argo CD's API server.
type Client struct {
	svc          appService
	closer       io.Closer
	appNamespace string
}

var _ StatusSource = (*Client)(nil)

// NewClient connects to argocd-server with a token.
func NewClient(opts ClientOptions) (*Client, error) {
	c, err := apiclient.NewClient(&apiclient.ClientOptions{
		ServerAddr: opts.Server, AuthToken: opts.Token, PlainText: opts.PlainText,
		Insecure: opts.Insecure, GRPCWeb: opts.GRPCWeb, UserAgent: "canarybot",
	})
	if err != nil {
		return nil, fmt.Errorf("argocd client for %s: %w", opts.Server, err)
	}
	closer, svc, err := c.NewApplicationClient()
	if err != nil {
		return nil, fmt.Errorf("argocd application client for %s: %w", opts.Server, err)
	}
	return &Client{svc: svc, closer: closer, appNamespace: opts.AppNamespace}, nil
}

// Close releases the connection.
func (c *Client) Close() error { return c.closer.Close() }

// Status reads and normalises an Application's status.
func (c *Client) Status(ctx context.Context, app string) (AppStatus, error) {
	a, err := c.svc.Get(ctx, c.query(app, ""))
	if err != nil {
		return AppStatus{}, fmt.Errorf("get application %s: %w", app, err)
	}
	return Normalize(a), nil
}

// Refresh asks Argo CD to compare the Application with Git now, instead of
// at its next poll.
func (c *Client) Refresh(ctx context.Context, app string) error {
	if _, err := c.svc.Get(ctx, c.query(app, "normal")); err != nil {
		return fmt.Errorf("refresh application %s: %w", app, err)
	}
	return nil
}

func (c *Client) query(app, refresh string) *applicationpkg.ApplicationQuery {
	q := &applicationpkg.ApplicationQuery{Name: &app}
	if refresh != "" {
		q.Refresh = &refresh
	}
	if c.appNamespace != "" {
		q.AppNamespace = &c.appNamespace
	}
	return q
}

// Normalize flattens an Application into an AppStatus.
func Normalize(a *v1alpha1.Application) AppStatus {
	st := a.Status
	s := AppStatus{
		App:           a.Name,
		SyncStatus:    string(st.Sync.Status),
		SyncRevision:  st.Sync.Revision,
		Health:        string(st.Health.Status),
		HealthMessage: st.Health.Message,
	}
	if st.ReconciledAt != nil {
		s.ReconciledAt = st.ReconciledAt.Time
	}
	if op := st.OperationState; op != nil {
		s.OperationPhase = string(op.Phase)
		s.OperationMessage = op.Message
		s.OperationRetries = op.RetryCount
		if op.SyncResult != nil {
			s.OperationRevision = op.SyncResult.Revision
		}
		if op.FinishedAt != nil {
			s.FinishedAt = op.FinishedAt.Time
		}
	}
	return s
}
