package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// merge returns base with every field over sets replacing base's. Latency,
// TTFT and GPU are merged field by field; Xid codes and prediction classes
// are replaced as a whole.
func merge(base, over Behaviour) Behaviour {
	out := base.clone()
	if over.ErrorRate != nil {
		out.ErrorRate = over.ErrorRate
	}
	out.Latency = mergeDistribution(out.Latency, over.Latency)
	out.TTFT = mergeDistribution(out.TTFT, over.TTFT)
	if over.KVCacheUsage != nil {
		out.KVCacheUsage = over.KVCacheUsage
	}
	if over.KVCacheGrowthPerMinute != nil {
		out.KVCacheGrowthPerMinute = over.KVCacheGrowthPerMinute
	}
	if over.QueueDepth != nil {
		out.QueueDepth = over.QueueDepth
	}
	if g := over.GPU; g != nil {
		if out.GPU == nil {
			out.GPU = &GPU{}
		}
		if g.MemoryUsedFraction != nil {
			out.GPU.MemoryUsedFraction = g.MemoryUsedFraction
		}
		if g.MemoryGrowthPerMinute != nil {
			out.GPU.MemoryGrowthPerMinute = g.MemoryGrowthPerMinute
		}
		if g.TemperatureC != nil {
			out.GPU.TemperatureC = g.TemperatureC
		}
		if g.Xid != nil {
			out.GPU.Xid = slices.Clone(g.Xid)
		}
	}
	if over.Predictions != nil {
		out.Predictions = &Predictions{Classes: slices.Clone(over.Predictions.Classes)}
	}
	if over.Available != nil {
		out.Available = over.Available
	}
	out.Feedback = mergeFeedback(out.Feedback, over.Feedback)
	return out
}

func mergeDistribution(base, over *Distribution) *Distribution {
	if over == nil {
		return base
	}
	if base == nil {
		c := *over
		c.Components = slices.Clone(over.Components)
		return &c
	}
	out := *base
	if over.Distribution != "" {
		out.Distribution = over.Distribution
	}
	if over.MedianSeconds != nil {
		out.MedianSeconds = over.MedianSeconds
	}
	if over.Sigma != nil {
		out.Sigma = over.Sigma
	}
	if over.Components != nil {
		out.Components = slices.Clone(over.Components)
	}
	return &out
}

// clone copies b deeply enough that merging into the copy leaves b alone.
// The scalar pointers are shared: nothing writes through them.
func (b Behaviour) clone() Behaviour {
	out := b
	if b.Latency != nil {
		l := *b.Latency
		out.Latency = &l
	}
	if b.TTFT != nil {
		t := *b.TTFT
		out.TTFT = &t
	}
	if b.GPU != nil {
		g := *b.GPU
		out.GPU = &g
	}
	return out
}

// params is a resolved Behaviour: what the traffic model draws from.
// Absent gauges are NaN; absent distributions have no components.
type params struct {
	errorRate float64
	latency   dist
	ttft      dist
	// kv and gpuMem grow linearly from the moment their values took effect.
	kv, kvGrowth         float64
	gpuMem, gpuMemGrowth float64
	queue, temp          float64
	// classes are cumulative normalised weights; nil when none.
	classes  []float64
	feedback feedbackParams
}

// dist is a lognormal mixture: cumulative normalised weights, medians and
// sigmas. A lognormal is a mixture of one.
type dist struct {
	cum, median, sigma []float64
}

func (d dist) ok() bool { return len(d.cum) > 0 }

// resolve turns a merged Behaviour into params, or says what is missing.
func resolve(b Behaviour) (params, error) {
	p := params{
		kv: math.NaN(), gpuMem: math.NaN(), queue: math.NaN(), temp: math.NaN(),
	}
	var errs []error
	if b.ErrorRate != nil {
		p.errorRate = *b.ErrorRate
	}
	var err error
	if p.latency, err = resolveDistribution(b.Latency); err != nil {
		errs = append(errs, fmt.Errorf("latency: %w", err))
	}
	if p.ttft, err = resolveDistribution(b.TTFT); err != nil {
		errs = append(errs, fmt.Errorf("ttft: %w", err))
	}
	p.kv, p.kvGrowth = orNaN(b.KVCacheUsage), orZero(b.KVCacheGrowthPerMinute)
	if b.KVCacheGrowthPerMinute != nil && b.KVCacheUsage == nil {
		errs = append(errs, errors.New("kvCacheGrowthPerMinute needs a kvCacheUsage to grow from"))
	}
	p.queue = orNaN(b.QueueDepth)
	if g := b.GPU; g != nil {
		p.gpuMem, p.gpuMemGrowth = orNaN(g.MemoryUsedFraction), orZero(g.MemoryGrowthPerMinute)
		if g.MemoryGrowthPerMinute != nil && g.MemoryUsedFraction == nil {
			errs = append(errs, errors.New("gpu.memoryGrowthPerMinute needs a gpu.memoryUsedFraction to grow from"))
		}
		p.temp = orNaN(g.TemperatureC)
	}
	if b.Predictions != nil {
		p.classes = cumulative(b.Predictions.Classes)
	}
	p.feedback = resolveFeedback(b.Feedback)
	return p, errors.Join(errs...)
}

func resolveDistribution(d *Distribution) (dist, error) {
	if d == nil {
		return dist{}, nil
	}
	if d.Distribution == DistMixture {
		var out dist
		ws := make([]float64, len(d.Components))
		for i, c := range d.Components {
			ws[i] = c.Weight
			out.median = append(out.median, c.MedianSeconds)
			out.sigma = append(out.sigma, c.Sigma)
		}
		out.cum = cumulative(ws)
		if out.cum == nil {
			return dist{}, errors.New("mixture needs components with positive weights")
		}
		return out, nil
	}
	if d.MedianSeconds == nil || d.Sigma == nil {
		return dist{}, errors.New("lognormal needs medianSeconds and sigma")
	}
	return dist{cum: []float64{1}, median: []float64{*d.MedianSeconds}, sigma: []float64{*d.Sigma}}, nil
}

// draw returns one value in seconds: pick a component, then
// median·exp(sigma·N(0,1)). It always consumes one uniform and one normal
// draw, even for a lognormal or an absent distribution (which returns NaN),
// so that the sequence of draws does not depend on the behaviour.
func (d dist) draw(rng *rand.Rand) float64 {
	u, z := rng.Float64(), rng.NormFloat64()
	if !d.ok() {
		return math.NaN()
	}
	i := pickCumulativeAt(u, d.cum)
	return d.median[i] * math.Exp(d.sigma[i]*z)
}

// cumulative returns normalised cumulative weights, or nil when they sum
// to zero or there are none.
func cumulative(ws []float64) []float64 {
	total := 0.0
	for _, w := range ws {
		total += w
	}
	if !(total > 0) {
		return nil
	}
	out := make([]float64, len(ws))
	acc := 0.0
	for i, w := range ws {
		acc += w
		out[i] = acc / total
	}
	out[len(out)-1] = 1
	return out
}

// pickCumulativeAt is the index that uniform u selects by cumulative
// weights ending in 1.
func pickCumulativeAt(u float64, cum []float64) int {
	for i, c := range cum {
		if u < c {
			return i
		}
	}
	return len(cum) - 1
}

func orNaN(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

func orZero(v *float64) float64 {
	if v == nil {
		return 0
	}
	return *v
}
