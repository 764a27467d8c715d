package traffic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/canarybot/canarybot/internal/e2e/kservesim"
	"github.com/canarybot/canarybot/pkg/canary"
)

// Watch calls onSplit with the plan's live split as soon as it can be
// read, and again after every change to it, one call at a time, until ctx
// ends; then it returns nil. A split that cannot be read yet (ErrNotReady)
// is waited for; any other reading error is logged to cfg.Logger once and
// waited out, since the next change may fix it. An error from onSplit ends
// Watch with that error.
func Watch(ctx context.Context, dyn dynamic.Interface, cfg Config, onSplit func(Split) error) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if dyn == nil || onSplit == nil {
		return errors.New("watch traffic: nil client or callback")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, cfg.Namespace, nil)
	gvrs := []schema.GroupVersionResource{kservesim.GVR()}
	switch cfg.Traffic.Mode {
	case canary.ModeGateway:
		gvrs = append(gvrs, HTTPRouteGVR())
	case canary.ModeLLMISVC:
		gvrs = []schema.GroupVersionResource{LLMISVCGVR()}
	}
	// changed holds at most one pending wake-up: the loop reads the whole
	// split from the caches, so coalescing events loses nothing.
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	listers := map[schema.GroupVersionResource]informers.GenericInformer{}
	for _, gvr := range gvrs {
		inf := factory.ForResource(gvr)
		if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke,
		}); err != nil {
			return fmt.Errorf("watch %s: %w", gvr.Resource, err)
		}
		listers[gvr] = inf
	}
	// Shutdown waits for the informers, which stop only when their stop
	// channel closes: cancel first, also when onSplit ends the watch.
	ctx, cancel := context.WithCancel(ctx)
	factory.Start(ctx.Done())
	defer func() {
		cancel()
		factory.Shutdown()
	}()
	get := func(gvr schema.GroupVersionResource, name string) (*unstructured.Unstructured, error) {
		o, err := listers[gvr].Lister().ByNamespace(cfg.Namespace).Get(name)
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%s %s/%s: %w", gvr.Resource, cfg.Namespace, name, ErrNotReady)
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", gvr.Resource, cfg.Namespace, name, err)
		}
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			return nil, fmt.Errorf("%s %s/%s: unexpected type %T", gvr.Resource, cfg.Namespace, name, o)
		}
		return u, nil
	}
	return loop(ctx, changed, func() (Split, error) { return splitOf(cfg, get) }, logger, onSplit)
}

// loop reads the split after each wake-up and hands on every new one.
func loop(ctx context.Context, changed <-chan struct{}, read func() (Split, error), logger *slog.Logger, onSplit func(Split) error) error {
	var last *Split
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		s, err := read()
		if err != nil {
			// Log each distinct problem once, not on every event.
			if msg := err.Error(); msg != lastErr && !errors.Is(err, ErrNotReady) {
				logger.Warn("traffic: cannot read the live split; waiting for a change", "error", err)
				lastErr = msg
			}
			continue
		}
		lastErr = ""
		if last != nil && *last == s {
			continue
		}
		if err := onSplit(s); err != nil {
			return fmt.Errorf("watch traffic: apply %+v: %w", s, err)
		}
		last = &s
	}
}
