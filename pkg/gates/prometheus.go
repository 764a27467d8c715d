package gates

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/canarybot/canarybot/pkg/redact"
)

// NewPrometheus returns a Querier for the Prometheus HTTP API at address,
// such as "http://prometheus.monitoring:9090". rt carries the requests
// (authentication, TLS); nil uses client_golang's api.DefaultRoundTripper.
func NewPrometheus(address string, rt http.RoundTripper) (Querier, error) {
	return NewPrometheusAPI(address, rt)
}

// NewPrometheusAPI is NewPrometheus returning the whole v1.API, for
// callers that also run range queries (PromSignals). address may carry
// basic auth (https://user:pass@host) or a token parameter; no error
// shows them.
func NewPrometheusAPI(address string, rt http.RoundTripper) (v1.API, error) {
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("parse prometheus address %q: %w", redact.URL(address), redact.Error(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus address %q: want http(s)://host[:port][/path]", redact.URL(address))
	}
	c, err := api.NewClient(api.Config{Address: address, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("create prometheus client for %s: %w", redact.URL(address), redact.Error(err))
	}
	return v1.NewAPI(redactingClient{c}), nil
}

// redactingClient hides the address's credentials in the errors of Go's
// HTTP client, which quote the URL they dialled: a password as "***",
// but a user-only token or a token parameter as it is. Gate errors end
// up in logs and in the reasons committed to Git.
type redactingClient struct{ api.Client }

func (c redactingClient) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	resp, body, err := c.Client.Do(ctx, req)
	return resp, body, redact.Error(err)
}
