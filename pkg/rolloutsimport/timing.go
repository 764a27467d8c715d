package rolloutsimport

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// timing carries interval, initialDelay, count and the limits. Argo
// Rollouts takes one measurement when neither count nor interval is set,
// and measures without end when only interval is; canarybot bounds every
// analysis, so the latter is written with a count and listed.
func (c *converter) timing(mp string, m map[string]json.RawMessage, args argValues, t *canary.ThresholdGate) error {
	var err error
	if t.Interval, err = duration(mp+".interval", m["interval"], args); err != nil {
		return err
	}
	if t.InitialDelay, err = duration(mp+".initialDelay", m["initialDelay"], args); err != nil {
		return err
	}
	limits := []struct {
		key string
		out **int
	}{
		{"count", &t.Count}, {"failureLimit", &t.FailureLimit},
		{"inconclusiveLimit", &t.InconclusiveLimit}, {"consecutiveErrorLimit", &t.ConsecutiveErrorLimit},
	}
	for _, l := range limits {
		v, ok, err := intOrString(m[l.key], args.subst)
		switch {
		case err != nil:
			return wrapAt(mp+"."+l.key, err)
		case !ok:
		case v < 0:
			c.drop(mp+"."+l.key, "a negative %s (%d) has no canarybot equivalent; left at canarybot's default", l.key, v)
		default:
			*l.out = &v
		}
	}
	if t.Count != nil {
		return nil
	}
	if t.Interval == nil {
		one := 1
		t.Count = &one
		return nil
	}
	n := max(canary.DefaultGateCount, deref(t.FailureLimit)+1, deref(t.InconclusiveLimit)+1)
	t.Count = &n
	c.drop(mp+".count", "unset with an interval: Argo Rollouts measures until the analysis ends, canarybot bounds every analysis; written as count %d (every %s)", n, t.Interval.Duration)
	return nil
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// duration reads an Argo DurationString ("60s", "5m") after args.
func duration(path string, raw json.RawMessage, args argValues) (*canary.Duration, error) {
	s, ok, err := str(raw)
	if err == nil && ok {
		s, err = args.subst(s)
	}
	if err != nil {
		return nil, wrapAt(path, err)
	}
	if !ok {
		return nil, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return canary.D(d), nil
}
