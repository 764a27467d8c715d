// Package mlflow watches an MLflow Model Registry over its REST API and
// proposes model versions as pinned canary.Artifacts, and receives
// MLflow's model-registry webhooks.
//
// A proposed artifact is identified by models:/<model>/<version>: MLflow
// never changes what a version number refers to, while aliases ("@champion")
// and stages move. Its storage location, from the get-download-uri endpoint,
// is recorded as Artifact.StorageURI, and that is what the overlay's
// storageUri gets, because KServe cannot read models:/ URIs. Locations a
// model server cannot load (mlflow-artifacts:/, runs:/, dbfs:/, file:/) are
// refused with ErrNotServable.
package mlflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/canarybot/canarybot/pkg/redact"
)

// API paths, relative to the tracking URI.
const (
	pathSearchVersions = "/api/2.0/mlflow/model-versions/search"
	pathAlias          = "/api/2.0/mlflow/registered-models/alias"
	pathDownloadURI    = "/api/2.0/mlflow/model-versions/get-download-uri"
)

// Limits on what the client reads.
const (
	// MaxResponseBytes bounds one API response.
	MaxResponseBytes = 8 << 20
	// MaxSearchPages bounds the pages one search follows.
	MaxSearchPages = 100
	// DefaultPageSize is the max_results of each search page.
	DefaultPageSize = 1000
)

// Version statuses MLflow reports.
const (
	StatusReady = "READY"
)

// ErrNotFound marks MLflow's RESOURCE_DOES_NOT_EXIST: no such model,
// version or alias.
var ErrNotFound = errors.New("mlflow resource does not exist")

// APIError is an error response from MLflow: {"error_code", "message"}.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"error_code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("mlflow: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Is makes errors.Is(err, ErrNotFound) true for RESOURCE_DOES_NOT_EXIST.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.Code == "RESOURCE_DOES_NOT_EXIST"
}

// ModelVersion is the part of MLflow's ModelVersion canarybot reads.
type ModelVersion struct {
	Name         string   `json:"name"`
	Version      string   `json:"version"`
	Source       string   `json:"source,omitempty"`
	RunID        string   `json:"run_id,omitempty"`
	Status       string   `json:"status,omitempty"`
	CurrentStage string   `json:"current_stage,omitempty"`
	Tags         []Tag    `json:"tags,omitempty"`
	Aliases      []string `json:"aliases,omitempty"`
}

// Tag is a model version tag.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Tag returns the value of tag key and whether it is set.
func (v ModelVersion) Tag(key string) (string, bool) {
	for _, t := range v.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// Client calls one MLflow server's Model Registry REST API.
type Client struct {
	base *url.URL
	o    *options
}

// NewClient returns a client for the server at trackingURI, an http(s)
// URL, possibly with a path prefix.
func NewClient(trackingURI string, opts ...Option) (*Client, error) {
	return newClient(trackingURI, newOptions(opts))
}

func newClient(trackingURI string, o *options) (*Client, error) {
	u, err := url.Parse(trackingURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracking URI %q: want http(s)://host[/prefix]", redact.URL(trackingURI))
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, o: o}, nil
}

// ModelVersionByAlias returns the version alias points at. It fails with
// ErrNotFound when the model or the alias does not exist.
func (c *Client) ModelVersionByAlias(ctx context.Context, model, alias string) (ModelVersion, error) {
	var resp struct {
		ModelVersion *ModelVersion `json:"model_version"`
	}
	if err := c.get(ctx, pathAlias, url.Values{"name": {model}, "alias": {alias}}, &resp); err != nil {
		return ModelVersion{}, fmt.Errorf("get alias %s@%s: %w", model, alias, err)
	}
	if resp.ModelVersion == nil {
		return ModelVersion{}, fmt.Errorf("get alias %s@%s: response has no model_version", model, alias)
	}
	return *resp.ModelVersion, nil
}

// SearchModelVersions returns every version of model, following pages.
func (c *Client) SearchModelVersions(ctx context.Context, model string) ([]ModelVersion, error) {
	q := url.Values{
		"filter":      {"name='" + strings.ReplaceAll(model, "'", `\'`) + "'"},
		"max_results": {strconv.Itoa(c.o.pageSize)},
	}
	var all []ModelVersion
	for page := 0; page < MaxSearchPages; page++ {
		var resp struct {
			ModelVersions []ModelVersion `json:"model_versions"`
			NextPageToken string         `json:"next_page_token"`
		}
		if err := c.get(ctx, pathSearchVersions, q, &resp); err != nil {
			return nil, fmt.Errorf("search versions of %s: %w", model, err)
		}
		all = append(all, resp.ModelVersions...)
		if resp.NextPageToken == "" {
			return all, nil
		}
		q.Set("page_token", resp.NextPageToken)
	}
	return nil, fmt.Errorf("search versions of %s: more than %d pages", model, MaxSearchPages)
}

// DownloadURI returns where a version's artifacts are stored.
func (c *Client) DownloadURI(ctx context.Context, model, version string) (string, error) {
	var resp struct {
		ArtifactURI string `json:"artifact_uri"`
	}
	if err := c.get(ctx, pathDownloadURI, url.Values{"name": {model}, "version": {version}}, &resp); err != nil {
		return "", fmt.Errorf("get download URI of %s/%s: %w", model, version, err)
	}
	if resp.ArtifactURI == "" {
		return "", fmt.Errorf("get download URI of %s/%s: empty artifact_uri", model, version)
	}
	return resp.ArtifactURI, nil
}

// get calls one endpoint and decodes its JSON answer into out.
func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.o.userAgent)
	c.o.authorize(req)
	resp, err := c.o.client.Do(req)
	if err != nil {
		return redact.Error(err) // it quotes the URL, credentials and all
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if len(body) > MaxResponseBytes {
		return fmt.Errorf("response is over %d bytes", MaxResponseBytes)
	}
	c.o.logger.DebugContext(ctx, "mlflow call", "path", path, "status", resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		apiErr := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(body, apiErr) != nil || apiErr.Code == "" {
			apiErr.Code, apiErr.Message = http.StatusText(resp.StatusCode), snippet(body)
		}
		return apiErr
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// snippet shortens a body for an error message.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// Option configures a Client and a Watcher.
type Option func(*options)

type options struct {
	client    *http.Client
	authorize func(*http.Request)
	logger    *slog.Logger
	userAgent string
	pageSize  int
	schemes   []string
}

func newOptions(opts []Option) *options {
	o := &options{
		client:    http.DefaultClient,
		authorize: func(*http.Request) {},
		logger:    slog.New(slog.DiscardHandler),
		userAgent: "canarybot",
		pageSize:  DefaultPageSize,
		schemes:   DefaultServableSchemes,
	}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// WithToken sends "Authorization: Bearer <token>", as MLFLOW_TRACKING_TOKEN
// and Databricks personal access tokens are sent.
func WithToken(token string) Option {
	return func(o *options) {
		o.authorize = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	}
}

// WithBasicAuth sends HTTP basic auth, as MLFLOW_TRACKING_USERNAME and
// MLFLOW_TRACKING_PASSWORD are sent to MLflow's basic-auth app.
func WithBasicAuth(username, password string) Option {
	return func(o *options) {
		o.authorize = func(r *http.Request) { r.SetBasicAuth(username, password) }
	}
}

// WithHTTPClient sets the HTTP client (timeouts, TLS, a test transport).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		if c != nil {
			o.client = c
		}
	}
}

// WithLogger sets the logger; by default nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithPageSize sets max_results of each search page.
func WithPageSize(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.pageSize = n
		}
	}
}

// WithServableSchemes replaces the storage URI schemes a model server can
// load; see DefaultServableSchemes.
func WithServableSchemes(schemes ...string) Option {
	return func(o *options) { o.schemes = schemes }
}
