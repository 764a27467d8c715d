package demo

import (
	"context"
	"fmt"
	"sync"

	"github.com/canarybot/canarybot/internal/modelsim"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/kustomize"
)

// cluster stands in for Kubernetes, KServe and the gateway: applying the
// synced manifests deploys versions to the simulated model servers and sets
// the router's weights, so traffic follows exactly what Git says.
type cluster struct {
	traffic *canary.GatewayTraffic
	stable  *modelsim.Server
	canary  *modelsim.Server
	router  *modelsim.Router

	mu    sync.Mutex
	byURI map[string]version
}

func (c *cluster) register(a canary.Artifact, v version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byURI[a.URI] = v
}

// apply is the local Argo CD stand-in's Apply.
func (c *cluster) apply(_ context.Context, _ string, manifests []byte) error {
	ex, err := kustomize.Parse(manifests)
	if err != nil {
		return fmt.Errorf("parse synced manifests: %w", err)
	}
	route, ok := ex.HTTPRoutes[c.traffic.HTTPRoute]
	if !ok {
		return fmt.Errorf("HTTPRoute %s not in the synced manifests", c.traffic.HTTPRoute)
	}
	for _, side := range []struct {
		b   canary.Backend
		srv *modelsim.Server
	}{{c.traffic.Stable, c.stable}, {c.traffic.Canary, c.canary}} {
		isvc, ok := ex.InferenceServices[side.b.InferenceService]
		if !ok {
			return fmt.Errorf("InferenceService %s not in the synced manifests", side.b.InferenceService)
		}
		c.mu.Lock()
		v, known := c.byURI[isvc.StorageURI]
		c.mu.Unlock()
		if !known {
			v = versions()[0]
		}
		if side.srv.Version() != v.Tag {
			if err := side.srv.Deploy(v.Tag, v.Behaviour); err != nil {
				return fmt.Errorf("deploy %s: %w", isvc.StorageURI, err)
			}
		}
	}
	return c.router.SetWeights(route.Weights[c.traffic.Stable.Service], route.Weights[c.traffic.Canary.Service])
}
