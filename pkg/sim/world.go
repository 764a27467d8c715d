package sim

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/signals"
)

// Epoch is where simulated time starts unless a Config says otherwise.
func Epoch() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// World is the simulated traffic of one scenario, advanced one second at a
// time. Second k covers (epoch+k s, epoch+k+1 s]. Each second it draws
// Poisson(rps) requests, sends each to the canary with probability weight/100
// (a binomial split), and draws each request's error, latency, TTFT and
// prediction class. It keeps cumulative counters at every second boundary
// (as Prometheus would scrape them) and gauges at every second's end, and
// serves them as a signals.Source. A World is safe for concurrent use.
//
// Draws use common random numbers: second k's stream is seeded from the
// seed, the scenario's name and k, and every request consumes the same
// draws whatever its side and behaviour. Two runs with one seed thus see the
// same arrivals and the same per-request randomness even when different
// policies move the weight at different times, so policies can be compared
// on identical traces.
type World struct {
	mu    sync.Mutex
	sc    *Scenario
	epoch time.Time
	// seed and stream seed each second's generator, pcg, which rng reads.
	seed, stream uint64
	pcg          *rand.PCG
	rng          *rand.Rand
	// mirrorPCG and mirrorRNG draw mirrored copies, from a stream of their
	// own, so that a mirror leaves the user-facing draws as they were.
	mirrorPCG *rand.PCG
	mirrorRNG *rand.Rand
	// mirrored counts the mirrored copies the canary has answered.
	mirrored int64

	latBounds, ttftBounds []float64
	nClasses              int
	sides                 [2]*sideState
	metricsChanges        []int
	split                 Split
	pending               []splitChange
	// canaryStart is the second the canary first received traffic; -1 before.
	canaryStart int
	// now is the number of seconds generated.
	now int
	err error

	cum     [2]*cumSeries
	gauges  [2]*gaugeSeries
	unavail []int32 // cumulative count of metrics-unavailable seconds
	xids    []xidEvent
	scratch [2]*second
	// labels are each side's delayed feedback; nil when the scenario
	// sets none.
	labels [2]*labels
}

// Split is how user requests reach the canary: a weight, a header route,
// and a mirror.
type Split struct {
	// Weight is the canary's share of user requests, 0..100.
	Weight int
	// Header: a header route to the canary is in force, so the scenario's
	// traffic.headerShare of user requests, those that carry its header,
	// go to the canary whatever the weight.
	Header bool
	// Mirror is the percentage, 0..100, of the requests stable answers
	// that are also sent to the canary as mirrored copies: the canary
	// answers them, its series count them, and no user sees the answer.
	Mirror int
}

func (s Split) clamped() Split {
	s.Weight = min(max(s.Weight, 0), 100)
	s.Mirror = min(max(s.Mirror, 0), 100)
	return s
}

// reaches reports whether any request reaches the canary under s.
func (s Split) reaches() bool { return s.Weight > 0 || s.Header || s.Mirror > 0 }

type splitChange struct {
	sec   int
	split Split
}

type xidEvent struct {
	sec  int
	side signals.Side
	code int
}

// cumSeries holds totals over seconds < j at index j (flattened by stride
// for histograms).
type cumSeries struct {
	requests, errors    []float64
	latency, ttft, pred []float64
}

// gaugeSeries holds each second's gauges, sampled at its end.
type gaugeSeries struct {
	kv, queue, mem, temp []float64
}

// second accumulates one second's draws for one side.
type second struct {
	requests, errors    float64
	latency, ttft, pred []float64
}

// NewWorld returns a world at epoch with no traffic generated yet and a
// canary weight of 0. Its draws depend on seed and the scenario's name only.
func NewWorld(sc *Scenario, seed uint64, epoch time.Time) (*World, error) {
	h := fnv.New64a()
	h.Write([]byte(sc.Name))
	pcg, mirrorPCG := rand.NewPCG(seed, h.Sum64()), rand.NewPCG(seed, ^h.Sum64())
	w := &World{
		sc: sc, epoch: epoch, seed: seed, stream: h.Sum64(), pcg: pcg, rng: rand.New(pcg),
		mirrorPCG: mirrorPCG, mirrorRNG: rand.New(mirrorPCG),
		latBounds: signals.E2EBuckets(), ttftBounds: signals.TTFTBuckets(),
		nClasses: maxClasses(sc), canaryStart: -1,
	}
	stable, err := newSideState(signals.Stable, sc.Stable, sc)
	if err != nil {
		return nil, fmt.Errorf("stable: %w", err)
	}
	canary, err := newSideState(signals.Canary, sc.CanaryBase(), sc)
	if err != nil {
		return nil, fmt.Errorf("canary: %w", err)
	}
	w.sides = [2]*sideState{stable, canary}
	for i, c := range sc.Changes {
		if c.Target == TargetMetrics {
			w.metricsChanges = append(w.metricsChanges, i)
		}
	}
	capSec := int(sc.Traffic.MaxDuration.Duration/time.Second) + 1200
	for s := range w.cum {
		w.cum[s] = &cumSeries{
			requests: make([]float64, 1, capSec), errors: make([]float64, 1, capSec),
			latency: make([]float64, len(w.latBounds)+1, (len(w.latBounds)+1)*capSec),
			ttft:    make([]float64, len(w.ttftBounds)+1, (len(w.ttftBounds)+1)*capSec),
			pred:    make([]float64, w.nClasses, w.nClasses*capSec),
		}
		w.gauges[s] = &gaugeSeries{
			kv: make([]float64, 0, capSec), queue: make([]float64, 0, capSec),
			mem: make([]float64, 0, capSec), temp: make([]float64, 0, capSec),
		}
		w.scratch[s] = &second{
			latency: make([]float64, len(w.latBounds)+1),
			ttft:    make([]float64, len(w.ttftBounds)+1),
			pred:    make([]float64, w.nClasses),
		}
	}
	w.unavail = make([]int32, 1, capSec)
	if hasFeedback(sc) {
		w.labels = [2]*labels{newLabels(capSec), newLabels(capSec)}
	}
	return w, nil
}

func maxClasses(sc *Scenario) int {
	n := 0
	blocks := []*Behaviour{&sc.Stable, sc.Canary}
	for _, c := range sc.Changes {
		blocks = append(blocks, c.Set)
	}
	for _, b := range blocks {
		if b != nil && b.Predictions != nil {
			n = max(n, len(b.Predictions.Classes))
		}
	}
	return n
}

// Now is the simulated time: the end of the last second generated.
func (w *World) Now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.timeAt(w.now)
}

func (w *World) timeAt(sec int) time.Time { return w.epoch.Add(time.Duration(sec) * time.Second) }

// SetWeight sets the canary weight, 0..100, with no header route or
// mirror, from the next second on.
func (w *World) SetWeight(weight int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.split = Split{Weight: weight}.clamped()
}

// ScheduleWeight sets the canary weight, with no header route or mirror,
// from the first second starting at or after at.
func (w *World) ScheduleWeight(at time.Time, weight int) {
	w.ScheduleSplit(at, Split{Weight: weight})
}

// ScheduleSplit sets the split from the first second starting at or after
// at.
func (w *World) ScheduleSplit(at time.Time, s Split) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sec := ceilSeconds(at.Sub(w.epoch))
	w.pending = append(w.pending, splitChange{sec: sec, split: s.clamped()})
	slices.SortStableFunc(w.pending, func(a, b splitChange) int { return a.sec - b.sec })
}

// Weight is the canary weight in force for the next second.
func (w *World) Weight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.split.Weight
}

// CanaryStart is when the canary first received traffic (a weight, a
// header route or a mirror first reached it); false before.
func (w *World) CanaryStart() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.canaryStart < 0 {
		return time.Time{}, false
	}
	return w.timeAt(w.canaryStart), true
}

// CanaryRequests counts the user requests the canary has answered so far:
// its exposure. Mirrored copies are not counted (see MirroredRequests),
// though the canary's series count them.
func (w *World) CanaryRequests() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int64(w.cum[signals.Canary].requests[w.now]) - w.mirrored
}

// MirroredRequests counts the mirrored copies the canary has answered.
func (w *World) MirroredRequests() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mirrored
}

// Err is the first error the world met while advancing; it stops advancing.
func (w *World) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Advance generates n more seconds of traffic.
func (w *World) Advance(n int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for range n {
		if w.err != nil {
			return w.err
		}
		if err := w.step(); err != nil {
			w.err = fmt.Errorf("second %d: %w", w.now, err)
		}
	}
	return w.err
}

// step generates second w.now and records it.
func (w *World) step() error {
	k := w.now
	for len(w.pending) > 0 && w.pending[0].sec <= k {
		w.split = w.pending[0].split
		w.pending = w.pending[1:]
	}
	if w.canaryStart < 0 && w.split.reaches() {
		w.canaryStart = k
	}
	since, started := time.Duration(0), w.canaryStart >= 0
	if started {
		since = time.Duration(k-w.canaryStart) * time.Second
	}
	for _, s := range w.sides {
		if s.side == signals.Canary && !started {
			continue
		}
		raised, err := s.update(k, since, started, w.sc)
		if err != nil {
			return fmt.Errorf("%s behaviour: %w", s.side, err)
		}
		for _, code := range raised {
			w.xids = append(w.xids, xidEvent{sec: k, side: s.side, code: code})
		}
	}
	w.drawTraffic(k)
	w.record(k, started && !w.available(since))
	w.now++
	return nil
}

// available reports whether the metrics backend answers at since.
func (w *World) available(since time.Duration) bool {
	ok := true
	for _, i := range w.metricsChanges {
		if c := w.sc.Changes[i]; c.active(since) {
			ok = *c.Set.Available
		}
	}
	return ok
}

// drawTraffic draws second k's requests into the scratch counters. A
// request goes to the canary when its routing draw u falls below the
// weight, or, while a header route holds, in the top headerShare of [0, 1):
// the requests that carry the header. A stable request is mirrored with
// the mirror's percentage, drawn from the mirror's own stream.
func (w *World) drawTraffic(k int) {
	w.pcg.Seed(w.seed, w.stream^splitmix64(uint64(k)))
	n := poisson(w.rng, w.sc.Traffic.RPS)
	for _, sc := range w.scratch {
		sc.requests, sc.errors = 0, 0
		clear(sc.latency)
		clear(sc.ttft)
		clear(sc.pred)
	}
	share, header, mirror := 0.0, 0.0, 0.0
	if w.canaryStart >= 0 {
		share, mirror = float64(w.split.Weight)/100, float64(w.split.Mirror)/100
		if w.split.Header {
			header = w.sc.Traffic.headerShare()
		}
	}
	if mirror > 0 {
		w.mirrorPCG.Seed(w.seed, ^w.stream^splitmix64(uint64(k)))
	}
	for range n {
		side := signals.Stable
		if u := w.rng.Float64(); u < share || u >= 1-header {
			side = signals.Canary
		}
		failed := w.drawRequest(w.rng, &w.sides[side].p, w.scratch[side])
		if w.labels[0] != nil {
			w.drawLabel(k, side, failed, w.rng.Float64())
		}
		if side == signals.Stable && mirror > 0 && w.mirrorRNG.Float64() < mirror {
			w.drawRequest(w.mirrorRNG, &w.sides[signals.Canary].p, w.scratch[signals.Canary])
			w.mirrored++
		}
	}
}

// drawRequest draws one request: an error, a latency (every request), and
// for successful ones a TTFT no longer than the latency and a class. It
// consumes the same draws whatever the outcome and the behaviour.
func (w *World) drawRequest(rng *rand.Rand, p *params, sc *second) (failed bool) {
	uErr, uClass := rng.Float64(), rng.Float64()
	lat, ttft := p.latency.draw(rng), p.ttft.draw(rng)
	sc.requests++
	failed = uErr < p.errorRate
	if failed {
		sc.errors++
	}
	if p.latency.ok() {
		sc.latency[bucket(w.latBounds, lat)]++
	} else {
		lat = math.Inf(1)
	}
	if failed {
		return true
	}
	if p.ttft.ok() {
		sc.ttft[bucket(w.ttftBounds, min(ttft, lat))]++
	}
	if p.classes != nil {
		sc.pred[pickCumulativeAt(uClass, p.classes)]++
	}
	return false
}

// splitmix64 scrambles a second's index into a stream selector.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// bucket is the index of the first bound ≥ x (Prometheus le buckets), or
// len(bounds) for +Inf.
func bucket(bounds []float64, x float64) int {
	i, _ := slices.BinarySearch(bounds, x)
	return i
}

// record appends second k's counters and gauges.
func (w *World) record(k int, unavailable bool) {
	for side := range w.cum {
		c, sc := w.cum[side], w.scratch[side]
		c.requests = append(c.requests, c.requests[k]+sc.requests)
		c.errors = append(c.errors, c.errors[k]+sc.errors)
		c.latency = appendCumulative(c.latency, sc.latency)
		c.ttft = appendCumulative(c.ttft, sc.ttft)
		c.pred = appendCumulative(c.pred, sc.pred)
		g, s := w.gauges[side], w.sides[side]
		kv, queue, mem, temp := math.NaN(), math.NaN(), math.NaN(), math.NaN()
		if s.started {
			end := float64(k + 1)
			kv = clamp01(s.p.kv + s.p.kvGrowth*(end-float64(s.kvEpoch))/60)
			mem = clamp01(s.p.gpuMem + s.p.gpuMemGrowth*(end-float64(s.memEpoch))/60)
			queue, temp = s.p.queue, s.p.temp
		}
		g.kv, g.queue = append(g.kv, kv), append(g.queue, queue)
		g.mem, g.temp = append(g.mem, mem), append(g.temp, temp)
	}
	for _, l := range w.labels {
		if l != nil {
			l.record(k)
		}
	}
	u := w.unavail[k]
	if unavailable {
		u++
	}
	w.unavail = append(w.unavail, u)
}

// appendCumulative appends last-row + add to a flattened cumulative series.
func appendCumulative(cum, add []float64) []float64 {
	n := len(add)
	if n == 0 {
		return cum
	}
	cum = append(cum, cum[len(cum)-n:]...)
	row := cum[len(cum)-n:]
	for i, x := range add {
		row[i] += x
	}
	return cum
}

func clamp01(x float64) float64 {
	if math.IsNaN(x) {
		return x
	}
	return min(max(x, 0), 1)
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int {
	s := d / time.Second
	if d%time.Second > 0 {
		s++
	}
	return int(s)
}

// floorSeconds rounds d down to whole seconds.
func floorSeconds(d time.Duration) int {
	s := d / time.Second
	if d%time.Second < 0 {
		s--
	}
	return int(s)
}
