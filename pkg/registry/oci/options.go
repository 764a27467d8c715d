// Package oci publishes models as OCI artifacts and watches an OCI
// repository for new versions, proposing each as a digest-pinned
// canary.Artifact.
//
// A model artifact is an OCI image manifest with artifactType
// ArtifactType, a JSON config blob of media type ConfigMediaType listing the
// files, and one layer of media type LayerMediaType: a deterministic tar of
// the files (sorted names, zero times, mode 0644), so that the same files
// under the same version always push to the same digest.
//
// A plan may require provenance (spec.model.source.oci.verify): the
// Watcher then proposes only artifacts whose cosign signature, a Sigstore
// bundle attached as an OCI referrer, verifies with sigstore-go; see
// Watcher.Verify.
package oci

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Media types of a canarybot model artifact.
const (
	ArtifactType    = "application/vnd.canarybot.model.v1"
	ConfigMediaType = "application/vnd.canarybot.model.config.v1+json"
	LayerMediaType  = "application/vnd.canarybot.model.layer.v1.tar"
)

// Option configures Push, Pull and Watcher.
type Option func(*options)

type options struct {
	auth      authn.Authenticator
	keychain  authn.Keychain
	insecure  bool
	transport http.RoundTripper
	logger    *slog.Logger
	userAgent string
}

func newOptions(opts []Option) *options {
	o := &options{logger: slog.New(slog.DiscardHandler), userAgent: "canarybot"}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// WithKeychain resolves credentials per registry, e.g. authn.DefaultKeychain
// for the docker config file. It is ignored when WithBasicAuth is given.
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) { o.keychain = k }
}

// WithBasicAuth authenticates with a user name and password or token.
func WithBasicAuth(username, password string) Option {
	return func(o *options) { o.auth = &authn.Basic{Username: username, Password: password} }
}

// WithBearerToken sends a registry bearer token (for example a GHCR or
// Artifact Registry access token) as "Authorization: Bearer <token>".
func WithBearerToken(token string) Option {
	return func(o *options) { o.auth = &authn.Bearer{Token: token} }
}

// WithDockerConfig resolves credentials from the Docker config.json in dir
// (the directory, as $DOCKER_CONFIG names it), including its credential
// helpers. It is ignored when WithBasicAuth, WithBearerToken or
// WithAuthenticator is given.
func WithDockerConfig(dir string) Option {
	return func(o *options) { o.keychain = dockerConfigKeychain{dir: dir} }
}

// WithAuthenticator authenticates with any go-containerregistry
// authenticator.
func WithAuthenticator(a authn.Authenticator) Option {
	return func(o *options) { o.auth = a }
}

// WithInsecure talks plain HTTP to the registry. go-containerregistry
// already does so for localhost, loopback and RFC 1918 addresses.
func WithInsecure() Option {
	return func(o *options) { o.insecure = true }
}

// WithTransport sets the HTTP transport, e.g. a test server's.
func WithTransport(t http.RoundTripper) Option {
	return func(o *options) { o.transport = t }
}

// WithLogger sets the logger; by default nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// nameOptions are the options for parsing references.
func (o *options) nameOptions() []name.Option {
	opts := []name.Option{name.StrictValidation}
	if o.insecure {
		opts = append(opts, name.Insecure)
	}
	return opts
}

// remoteOptions are the options for one registry call.
func (o *options) remoteOptions(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithUserAgent(o.userAgent)}
	switch {
	case o.auth != nil:
		opts = append(opts, remote.WithAuth(o.auth))
	case o.keychain != nil:
		opts = append(opts, remote.WithAuthFromKeychain(o.keychain))
	}
	if o.transport != nil {
		opts = append(opts, remote.WithTransport(o.transport))
	}
	return opts
}
