package traffic

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"

	"github.com/canarybot/canarybot/internal/modelsim"
)

// ErrUnknownModel means a split names a storageUri no Model is registered
// for.
var ErrUnknownModel = errors.New("no model registered for storageUri")

// Model is what the simulation serves for one storageUri.
type Model struct {
	// Tag is the version label the model server reports, e.g. "2.0.0".
	Tag       string
	Behaviour modelsim.Behaviour
}

// ApplierConfig configures an Applier.
type ApplierConfig struct {
	// Stable and Canary are the model servers of each side; Router splits
	// requests between them.
	Stable, Canary *modelsim.Server
	Router         *modelsim.Router
	// Models maps each storageUri to its model; Register adds more.
	Models map[string]Model
	// Logger receives one line per deployment; nil discards.
	Logger *slog.Logger
}

// Applier makes the simulated model servers and router follow a Split, as
// Kubernetes and the gateway would: each side runs the model its
// storageUri names, and the router's weights are the split's.
type Applier struct {
	stable, canary *modelsim.Server
	router         *modelsim.Router
	logger         *slog.Logger

	mu     sync.Mutex
	models map[string]Model
}

// NewApplier returns an Applier over cfg's servers and router.
func NewApplier(cfg ApplierConfig) (*Applier, error) {
	if cfg.Stable == nil || cfg.Canary == nil || cfg.Router == nil {
		return nil, errors.New("new applier: stable server, canary server and router are all required")
	}
	if cfg.Stable.Role() != modelsim.RoleStable || cfg.Canary.Role() != modelsim.RoleCanary {
		return nil, fmt.Errorf("new applier: servers have roles %s and %s, want stable and canary",
			cfg.Stable.Role(), cfg.Canary.Role())
	}
	a := &Applier{stable: cfg.Stable, canary: cfg.Canary, router: cfg.Router, logger: cfg.Logger,
		models: maps.Clone(cfg.Models)}
	if a.models == nil {
		a.models = map[string]Model{}
	}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// Register maps storageURI to m, e.g. once an artifact is pushed and its
// pinned URI known.
func (a *Applier) Register(storageURI string, m Model) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.models[storageURI] = m
}

// Apply deploys each side's model where it changed, then sets the
// router's weights to the split. A split naming an unregistered storageUri
// changes nothing and fails with ErrUnknownModel. Apply has the signature
// Watch wants for its callback.
func (a *Applier) Apply(s Split) error {
	if s.CanaryPercent < 0 || s.CanaryPercent > 100 {
		return fmt.Errorf("apply split: canary percent %d outside 0..100", s.CanaryPercent)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	sides := []struct {
		srv *modelsim.Server
		uri string
		m   Model
	}{{srv: a.stable, uri: s.StableURI}, {srv: a.canary, uri: s.CanaryURI}}
	for i := range sides {
		m, ok := a.models[sides[i].uri]
		if !ok {
			return fmt.Errorf("apply split: %s side: %w: %q", sides[i].srv.Role(), ErrUnknownModel, sides[i].uri)
		}
		sides[i].m = m
	}
	for _, side := range sides {
		if side.srv.Version() == side.m.Tag {
			continue
		}
		if err := side.srv.Deploy(side.m.Tag, side.m.Behaviour); err != nil {
			return fmt.Errorf("apply split: %w", err)
		}
		a.logger.Info("traffic: deployed", "role", side.srv.Role(), "version", side.m.Tag, "storageUri", side.uri)
	}
	if err := a.router.SetWeights(100-s.CanaryPercent, s.CanaryPercent); err != nil {
		return fmt.Errorf("apply split: %w", err)
	}
	return nil
}
