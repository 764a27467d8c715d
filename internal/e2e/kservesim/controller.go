package kservesim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// FieldManager is the field manager of kservesim's status writes.
const FieldManager = "kservesim"

// Options configures Run. The zero value watches every namespace with the
// wall clock and logs nothing.
type Options struct {
	// Namespace limits the watch to one namespace; "" watches all.
	Namespace string
	// Now stamps lastTransitionTime and lastFailureInfo.time; nil means
	// time.Now.
	Now func() time.Time
	// FailURI, when not nil, makes the models at the storageUris it
	// selects fail to load, like FailAnnotation.
	FailURI func(storageURI string) bool
	// Logger receives one line per status write and per failed write; nil
	// discards.
	Logger *slog.Logger
}

// controller reconciles the status of one resource (InferenceService,
// LLMInferenceService) from an informer's cache.
type controller struct {
	dyn     dynamic.Interface
	opts    Options
	gvr     schema.GroupVersionResource
	sync    func(c *controller, ctx context.Context, key string) error
	indexer cache.Indexer
	queue   workqueue.TypedRateLimitingInterface[string]
}

// Run writes the status of every InferenceService it sees, and again after
// every change, until ctx ends; then it returns nil. Writes go through
// the status subresource and only when the status would change, so a
// settled InferenceService costs nothing. A failed write is retried with
// backoff.
func Run(ctx context.Context, dyn dynamic.Interface, opts Options) error {
	return run(ctx, dyn, opts, GVR(), (*controller).reconcile)
}

// run is Run for the resource gvr, whose objects sync reconciles by key.
func run(ctx context.Context, dyn dynamic.Interface, opts Options, gvr schema.GroupVersionResource,
	sync func(c *controller, ctx context.Context, key string) error) error {
	if dyn == nil {
		return errors.New("run kservesim: nil dynamic client")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, opts.Namespace, nil)
	inf := factory.ForResource(gvr).Informer()
	c := &controller{
		dyn: dyn, opts: opts, gvr: gvr, sync: sync, indexer: inf.GetIndexer(),
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
	}
	defer c.queue.ShutDown()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return fmt.Errorf("run kservesim: watch %s: %w", gvr.Resource, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	factory.Start(ctx.Done())
	defer func() {
		cancel()
		factory.Shutdown()
	}()
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	for c.next(ctx) {
	}
	return nil
}

// next reconciles one queued key; it reports false once the queue is shut.
func (c *controller) next(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(c, ctx, key); err != nil && ctx.Err() == nil {
		c.opts.Logger.Warn("kservesim: status write failed; retrying", c.gvr.Resource, key, "error", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// cached is the object at key in the informer's cache; nil when gone.
func (c *controller) cached(key string) (*unstructured.Unstructured, error) {
	item, exists, err := c.indexer.GetByKey(key)
	if err != nil {
		return nil, fmt.Errorf("get %s from cache: %w", key, err)
	}
	if !exists {
		return nil, nil
	}
	obj, ok := item.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("get %s from cache: unexpected type %T", key, item)
	}
	return obj, nil
}

// reconcile writes the desired status of the InferenceService at key, if
// it differs from the one it has.
func (c *controller) reconcile(ctx context.Context, key string) error {
	cached, err := c.cached(key)
	if cached == nil || err != nil {
		return err
	}
	obj := cached.DeepCopy()
	want, err := desired(obj, c.opts.Now(), c.opts.FailURI)
	if err != nil {
		// The object itself is wrong; a retry cannot help until it changes.
		c.opts.Logger.Warn("kservesim: cannot reconcile", "inferenceService", key, "error", err)
		return nil
	}
	have, err := readStatus(obj)
	if err == nil && equality.Semantic.DeepEqual(have, want) {
		return nil
	}
	m, err := want.toMap()
	if err != nil {
		return err
	}
	obj.Object["status"] = m
	_, err = c.dyn.Resource(GVR()).Namespace(obj.GetNamespace()).
		UpdateStatus(ctx, obj, metav1.UpdateOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update status of %s: %w", key, err)
	}
	c.opts.Logger.Info("kservesim: status written", "inferenceService", key,
		"ready", ready(want), "revision", revisionOf(want), "generation", want.ObservedGeneration)
	return nil
}

// ready reports whether st's Ready condition is True.
func ready(st *status) bool {
	for _, c := range st.Conditions {
		if c.Type == condReady {
			return c.Status == "True"
		}
	}
	return false
}
