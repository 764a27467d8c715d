package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/canarybot/canarybot/internal/modelsim"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/registry/oci"
)

// registryHost is the demo registry's name in every artifact URI. It is
// served on a loopback port that changes per run, so URIs in Git stay valid
// across restarts.
const registryHost = "registry.demo.canarybot.dev"

// modelRepo is the OCI repository of the demo model.
const modelRepo = registryHost + "/models/qwen"

// version is one model version the demo publishes, with how it behaves.
type version struct {
	Tag       string
	Behaviour modelsim.Behaviour
}

// versions: v1 is stable at start; v2 is as good and is promoted; v3 is 40%
// slower end to end and must be reverted.
func versions() []version {
	good := modelsim.Behaviour{
		ErrorRate: 0.001, LatencyMedian: 150 * time.Millisecond, LatencySigma: 0.3,
		TTFTMedian: 30 * time.Millisecond, TTFTSigma: 0.4, KVCacheUsage: 0.42, QueueDepth: 1,
	}
	slow := good
	slow.LatencyMedian = 210 * time.Millisecond
	return []version{{"1.0.0", good}, {"2.0.0", good}, {"3.0.0", slow}}
}

// ociRegistry is go-containerregistry's registry on loopback, keeping
// blobs on disk. Manifests live in memory; the demo re-pushes its
// deterministic artifacts on every start, which yields the same digests.
type ociRegistry struct {
	srv  *http.Server
	opts []oci.Option
}

func startRegistry(dir string) (*ociRegistry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("registry dir: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the registry: %w", err)
	}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithBlobHandler(registry.NewDiskBlobHandler(dir)))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("demo registry stopped: %v", err)
		}
	}()
	addr := ln.Addr().String()
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	return &ociRegistry{srv: srv, opts: []oci.Option{oci.WithInsecure(), oci.WithTransport(tr)}}, nil
}

func (r *ociRegistry) close() error { return r.srv.Close() }

// push publishes one version and returns its pinned artifact.
func (r *ociRegistry) push(ctx context.Context, v version) (canary.Artifact, error) {
	files := map[string][]byte{
		"model.json": fmt.Appendf(nil, `{"model":"qwen","version":%q,"latencyMedian":%q}`+"\n", v.Tag, v.Behaviour.LatencyMedian),
	}
	digest, err := oci.Push(ctx, modelRepo, v.Tag, files, r.opts...)
	if err != nil {
		return canary.Artifact{}, err
	}
	return canary.Artifact{URI: "oci://" + modelRepo + "@" + digest, Version: v.Tag}, nil
}
