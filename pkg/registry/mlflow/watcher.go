package mlflow

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/canarybot/canarybot/pkg/artifact"
	"github.com/canarybot/canarybot/pkg/canary"
)

// DefaultServableSchemes are the storage URI schemes KServe's storage
// initializer can load.
var DefaultServableSchemes = []string{"s3", "gs", "https", "hdfs", "webhdfs", "pvc", "oci"}

// ErrNotServable marks a version whose storage location a model server
// cannot load, such as MLflow's proxied mlflow-artifacts:/ store.
var ErrNotServable = errors.New("storage location cannot be served")

// Watcher implements canary.ArtifactSource over an MLflow Model Registry.
//
// With spec.model.source.mlflow.alias set it proposes the version the
// alias points at; otherwise the highest READY version. Either way the
// version must carry every tag in requireTags with that exact value, or
// nothing is proposed. A version that does not qualify is logged once at
// Info, with the reason, until the answer changes.
type Watcher struct {
	o *options

	mu sync.Mutex
	// said maps a plan to the last "not proposing" message logged for it.
	said map[string]string
}

var _ canary.ArtifactSource = (*Watcher)(nil)

// NewWatcher returns a Watcher. By default it is anonymous and logs nothing.
func NewWatcher(opts ...Option) *Watcher {
	return &Watcher{o: newOptions(opts), said: map[string]string{}}
}

// Latest returns the version the plan's MLflow source selects, as
// models:/<model>/<version> with its storage location, or nil when none
// qualifies. A plan without an MLflow source or with a bad tracking URI is
// a terminal error; an unreachable server or a storage location in
// another scheme than WithServableSchemes is retryable.
func (w *Watcher) Latest(ctx context.Context, plan *canary.CanaryPlan) (*canary.Artifact, error) {
	if plan == nil || plan.Spec.Model.Source.MLflow == nil {
		return nil, canary.Terminal(fmt.Errorf("%w: plan has no spec.model.source.mlflow", canary.ErrInvalidPlan))
	}
	src := plan.Spec.Model.Source.MLflow
	c, err := newClient(src.TrackingURI, w.o)
	if err != nil {
		return nil, canary.Terminal(fmt.Errorf("%w: plan %q: %w", canary.ErrInvalidPlan, plan.Metadata.Name, err))
	}
	mv, why, err := w.pick(ctx, c, src)
	if err != nil {
		return nil, err
	}
	if mv == nil {
		w.sayOnce(ctx, plan.Metadata.Name, why)
		return nil, nil
	}
	w.sayOnce(ctx, plan.Metadata.Name, "")
	pinned, err := artifact.Parse(artifact.Ref{Scheme: artifact.SchemeMLflow, Path: src.Model, Version: mv.Version}.String())
	if err != nil {
		return nil, fmt.Errorf("version %q of %s: %w", mv.Version, src.Model, err)
	}
	loc, err := c.DownloadURI(ctx, src.Model, mv.Version)
	if err != nil {
		return nil, err
	}
	if err := w.servable(loc); err != nil {
		return nil, fmt.Errorf("version %s of %s: %w", mv.Version, src.Model, err)
	}
	return &canary.Artifact{URI: pinned.String(), Version: mv.Version, StorageURI: loc}, nil
}

// pick returns the qualifying version, or nil with the reason none does.
func (w *Watcher) pick(ctx context.Context, c *Client, src *canary.MLflowSource) (*ModelVersion, string, error) {
	if src.Alias != "" {
		mv, err := c.ModelVersionByAlias(ctx, src.Model, src.Alias)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Sprintf("model %s has no alias %q (or does not exist)", src.Model, src.Alias), nil
		}
		if err != nil {
			return nil, "", err
		}
		if why := disqualified(mv, src.RequireTags); why != "" {
			return nil, fmt.Sprintf("version %s (alias %s) %s; not proposing it", mv.Version, src.Alias, why), nil
		}
		return &mv, "", nil
	}
	all, err := c.SearchModelVersions(ctx, src.Model)
	if err != nil {
		return nil, "", err
	}
	best, bestN := (*ModelVersion)(nil), int64(0)
	for i := range all {
		mv := &all[i]
		n, err := strconv.ParseInt(mv.Version, 10, 64)
		if err != nil || mv.Name != src.Model || disqualified(*mv, src.RequireTags) != "" {
			continue
		}
		if best == nil || n > bestN {
			best, bestN = mv, n
		}
	}
	if best == nil {
		return nil, fmt.Sprintf("none of the %d versions of %s is READY with tags %s", len(all), src.Model,
			formatTags(src.RequireTags)), nil
	}
	return best, "", nil
}

// disqualified says why a version may not be proposed, or "".
func disqualified(mv ModelVersion, require map[string]string) string {
	if mv.Status != "" && mv.Status != StatusReady {
		return "is " + mv.Status
	}
	keys := make([]string, 0, len(require))
	for k := range require {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got, ok := mv.Tag(k); !ok || got != require[k] {
			if !ok {
				return fmt.Sprintf("lacks tag %s=%s", k, require[k])
			}
			return fmt.Sprintf("has tag %s=%s, not %s", k, got, require[k])
		}
	}
	return ""
}

// servable checks that a model server can load uri.
func (w *Watcher) servable(uri string) error {
	scheme, _, ok := strings.Cut(uri, ":")
	if ok {
		for _, s := range w.o.schemes {
			if strings.EqualFold(scheme, s) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: MLflow stores it at %q, which a model server cannot load; "+
		"give MLflow an artifact store it can read (%s://)", ErrNotServable, uri, strings.Join(w.o.schemes, "://, "))
}

// sayOnce logs why a plan gets no proposal, once per distinct reason; an
// empty why resets it.
func (w *Watcher) sayOnce(ctx context.Context, plan, why string) {
	w.mu.Lock()
	same := w.said[plan] == why
	w.said[plan] = why
	w.mu.Unlock()
	if !same && why != "" {
		w.o.logger.InfoContext(ctx, "no MLflow version to propose", "plan", plan, "reason", why)
	}
}

func formatTags(m map[string]string) string {
	if len(m) == 0 {
		return "(none required)"
	}
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
