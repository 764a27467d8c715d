package promserver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// pollInterval is how often WaitForSamples repeats its query.
const pollInterval = 200 * time.Millisecond

// WaitForSamples repeats an instant query at the current time until it
// returns data (at least one series, or a scalar that is a number) and
// returns that result. It gives up when ctx is done or Prometheus exits;
// bound it with a context deadline.
func (s *Server) WaitForSamples(ctx context.Context, query string) (model.Value, error) {
	c, err := api.NewClient(api.Config{Address: s.url})
	if err != nil {
		return nil, fmt.Errorf("create prometheus client: %w", err)
	}
	prom := v1.NewAPI(c)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last error
	for {
		v, _, _, err := prom.Query(ctx, query, time.Time{})
		if err == nil && hasData(v) {
			return v, nil
		}
		if err != nil {
			last = fmt.Errorf("query %s: %w", query, err)
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("wait for samples of %s: prometheus exited: %w\n%s", query, s.waitErr, s.output.Tail())
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for samples of %s: %w", query, errors.Join(ctx.Err(), last))
		case <-tick.C:
		}
	}
}

func hasData(v model.Value) bool {
	switch r := v.(type) {
	case model.Vector:
		return len(r) > 0
	case model.Matrix:
		return len(r) > 0
	case *model.Scalar:
		return !math.IsNaN(float64(r.Value))
	}
	return false
}
