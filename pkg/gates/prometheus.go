package gates

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
)

// NewPrometheus returns a Querier for the Prometheus HTTP API at address,
// such as "http://prometheus.monitoring:9090". rt carries the requests
// (authentication, TLS); nil uses client_golang's api.DefaultRoundTripper.
func NewPrometheus(address string, rt http.RoundTripper) (Querier, error) {
	return NewPrometheusAPI(address, rt)
}

// NewPrometheusAPI is NewPrometheus returning the whole v1.API, for
// callers that also run range queries (PromSignals).
func NewPrometheusAPI(address string, rt http.RoundTripper) (v1.API, error) {
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("parse prometheus address %q: %w", address, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus address %q: want http(s)://host[:port][/path]", address)
	}
	c, err := api.NewClient(api.Config{Address: address, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("create prometheus client for %s: %w", address, err)
	}
	return v1.NewAPI(c), nil
}
