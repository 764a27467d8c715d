package gates

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The start-point weights sum to 1: Ville's bound on the detector is α.
func TestBurstWeightsSumToOne(t *testing.T) {
	sum := 0.0
	for j := 1; j <= 1_000_000; j++ {
		sum += burstWeight(j)
	}
	// The tail past n is (k+1)/(n+k+1).
	tail := float64(burstWeightOffset+1) / float64(1_000_000+burstWeightOffset+1)
	if math.Abs(sum+tail-1) > 1e-9 {
		t.Errorf("weights sum to %.12f + tail %.3g, want 1", sum, tail)
	}
}

// Under H0 (no interval worse), watching after every interval for a long
// rollout keeps the false-alarm rate within α, even with the weight
// changing as a canary's does, and even when the canary is better.
func TestBurstDetectorKeepsAlphaUnderPeeking(t *testing.T) {
	const runs, alpha = 400, 0.05
	for _, tc := range []struct {
		name   string
		pS, pC float64
	}{{"equal rates", 0.05, 0.05}, {"rare events", 0.002, 0.002}, {"canary better", 0.05, 0.03}} {
		alarms := 0
		for seed := uint64(0); seed < runs; seed++ {
			rnd := rand.New(rand.NewPCG(seed, 11))
			var xs []Counts
			for _, w := range []float64{0.05, 0.2, 0.5} {
				xs = append(xs, poissonStream(rnd, 100, 20, w, tc.pS, tc.pC)...)
			}
			if RunBurstDetector(xs, alpha).AlarmAt >= 0 {
				alarms++
			}
		}
		if rate := float64(alarms) / runs; rate > alpha+2.5*math.Sqrt(alpha*(1-alpha)/runs) {
			t.Errorf("%s: false alarms %d/%d = %.3f, bound %.2f", tc.name, alarms, runs, rate, alpha)
		}
	}
}

// Bursts that a whole-rollout test dilutes are found, and the alarm points
// at the burst: 3% errors against stable's 0.1% for 4 intervals in 15.
func TestBurstDetectorFindsIntermittentErrors(t *testing.T) {
	const runs, alpha = 200, 0.005
	const firstBurst = 11
	found, diluted := 0, 0
	for seed := uint64(0); seed < runs; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 13))
		var xs []Counts
		for range 4 {
			xs = append(xs, poissonStream(rnd, 11, 200, 0.5, 0.001, 0.001)...)
			xs = append(xs, poissonStream(rnd, 4, 200, 0.5, 0.001, 0.03)...)
		}
		p := RunBurstDetector(xs, alpha)
		if p.AlarmAt >= 0 {
			found++
			if p.AlarmAt < firstBurst || p.From > p.AlarmAt {
				t.Errorf("seed %d: alarm at %d from %d, before the first burst at %d", seed, p.AlarmAt, p.From, firstBurst)
			}
			if p.EventsC <= p.EventsS {
				t.Errorf("seed %d: alarm with %v canary / %v stable events", seed, p.EventsC, p.EventsS)
			}
		}
		if RunRatioTests(xs, alpha, 0.01, 2).WorseAt >= 0 {
			diluted++
		}
	}
	if found < runs*9/10 {
		t.Errorf("found %d/%d bursty canaries, want ≥ 90%%", found, runs)
	}
	t.Logf("burst detector %d/%d, whole-rollout test %d/%d", found, runs, diluted, runs)
}

// Table: what the detector reports for hand-made paths.
func TestBurstDetectorPaths(t *testing.T) {
	quiet := Counts{RequestsS: 100, RequestsC: 100, EventsS: 1, EventsC: 1}
	none := Counts{RequestsS: 100, RequestsC: 100}
	burst := Counts{RequestsS: 100, RequestsC: 100, EventsS: 0, EventsC: 12}
	for _, tc := range []struct {
		name      string
		xs        []Counts
		alarmAt   int
		from      int
		eventsC   float64
		eventsMax float64 // bound on E when no alarm
	}{
		{"empty", nil, -1, -1, 0, 0},
		{"no events", []Counts{none, none, none}, -1, -1, 0, 0},
		{"quiet", []Counts{quiet, quiet, quiet, quiet}, -1, 0, 0, 1},
		{"burst after quiet", []Counts{quiet, quiet, none, burst, burst, burst}, 3, 3, 12, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := RunBurstDetector(tc.xs, 0.01)
			if p.AlarmAt != tc.alarmAt {
				t.Fatalf("AlarmAt = %d, want %d (e %.3g)", p.AlarmAt, tc.alarmAt, p.E)
			}
			if tc.alarmAt >= 0 {
				if p.From != tc.from || p.EventsC != tc.eventsC || p.E < 100 {
					t.Errorf("From %d EventsC %v E %.3g, want %d, %v, ≥ 100", p.From, p.EventsC, p.E, tc.from, tc.eventsC)
				}
				return
			}
			if p.E > tc.eventsMax {
				t.Errorf("E = %.3g, want ≤ %v", p.E, tc.eventsMax)
			}
		})
	}
}

// Sparse bursts, each too small for the single-burst detector to be sure
// of, add up in the recurring-burst e-process: 3% errors against stable's
// 0.1% for 20 s every 5 minutes at half of 20 requests/s (about 6 canary
// errors a burst), watched for 45 minutes in 10 s intervals. With fixed
// seeds the single-burst detector finds 190 of 200, the errors detector
// 198.
func TestRecurringBurstsAddUp(t *testing.T) {
	const runs, alpha = 200, 0.003
	single, both := 0, 0
	for seed := uint64(0); seed < runs; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 17))
		var xs []Counts
		for range 9 {
			xs = append(xs, poissonStream(rnd, 28, 200, 0.5, 0.001, 0.001)...)
			xs = append(xs, poissonStream(rnd, 2, 200, 0.5, 0.001, 0.03)...)
		}
		if runBurstDetector(xs, asLRs(xs), alpha, 0).AlarmAt >= 0 {
			single++
		}
		if RunBurstDetector(xs, alpha).AlarmAt >= 0 {
			both++
		}
	}
	if both < runs*97/100 || both <= single {
		t.Errorf("with recurring bursts %d/%d found, single bursts only %d/%d; want ≥ 97%% and more", both, runs, single, runs)
	}
	t.Logf("found: single-burst detector %d/%d, with recurring bursts %d/%d", single, runs, both, runs)
}

// The recurring part keeps α over a long watch, where its bets have many
// quiet intervals to lose on: an hour of 10 s intervals at 50%.
func TestRecurringBurstsKeepAlphaOverALongWatch(t *testing.T) {
	const runs, alpha = 400, 0.05
	alarms := 0
	for seed := uint64(0); seed < runs; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 19))
		xs := poissonStream(rnd, 360, 200, 0.5, 0.003, 0.003)
		if runBurstDetector(xs, asLRs(xs), alpha, 1).AlarmAt >= 0 {
			alarms++
		}
	}
	if rate := float64(alarms) / runs; rate > alpha+2.5*math.Sqrt(alpha*(1-alpha)/runs) {
		t.Errorf("false alarms %d/%d = %.3f, bound %.2f", alarms, runs, rate, alpha)
	}
}

func asLRs(xs []Counts) []intervalLR {
	out := make([]intervalLR, len(xs))
	for i, c := range xs {
		out[i] = c
	}
	return out
}
