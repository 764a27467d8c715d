package sim

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const routesScenario = `
name: routes
traffic: {rps: 50, maxDuration: 3h, headerShare: 0.1}
stable:
  errorRate: 0.01
  latency: {distribution: lognormal, medianSeconds: 0.30, sigma: 0.5}
canary:
  errorRate: 0.5
expect: revert
`

// splitWorld runs secs seconds under split s from the start.
func splitWorld(t *testing.T, sc *Scenario, s Split, secs int) *World {
	t.Helper()
	w, err := NewWorld(sc, 3, Epoch())
	if err != nil {
		t.Fatal(err)
	}
	w.ScheduleSplit(Epoch(), s)
	if err := w.Advance(secs); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestHeaderRouteSendsTheHeaderShareToTheCanary(t *testing.T) {
	const secs = 3600
	sc := mustScenario(t, routesScenario)
	w := splitWorld(t, sc, Split{Header: true}, secs)
	if cs, ok := w.CanaryStart(); !ok || !cs.Equal(Epoch()) {
		t.Fatalf("canary start %v %v, want the header route's first second", cs, ok)
	}
	s := read(t, w, Epoch(), w.Now(), time.Minute)
	req, errs, _, _, _ := total(s, Epoch(), w.Now())
	n := req[0] + req[1]
	// About five standard deviations of each estimate.
	near(t, "canary share under a header route at weight 0", req[1]/n, 0.1, 0.008)
	near(t, "canary error ratio", errs[1]/req[1], 0.5, 0.02)
	if got := w.CanaryRequests(); float64(got) != req[1] {
		t.Errorf("CanaryRequests() = %d, want every header request the canary answered, %v", got, req[1])
	}
	if got := w.MirroredRequests(); got != 0 {
		t.Errorf("MirroredRequests() = %d under a header route, want 0", got)
	}

	// The header share adds to the weight: at 20% with the header, about
	// 20% + 10% reach the canary.
	w = splitWorld(t, sc, Split{Weight: 20, Header: true}, secs)
	req, _, _, _, _ = total(read(t, w, Epoch(), w.Now(), time.Minute), Epoch(), w.Now())
	near(t, "canary share at weight 20 with the header route", req[1]/(req[0]+req[1]), 0.3, 0.01)
}

func TestMirrorCopiesStableRequestsWithoutExposingUsers(t *testing.T) {
	const secs = 3600
	sc := mustScenario(t, routesScenario)
	bare := splitWorld(t, sc, Split{}, secs)
	w := splitWorld(t, sc, Split{Mirror: 20}, secs)
	if _, ok := w.CanaryStart(); !ok {
		t.Fatal("a mirror did not start the canary")
	}
	s := read(t, w, Epoch(), w.Now(), time.Minute)
	req, errs, lat, _, _ := total(s, Epoch(), w.Now())
	bareReq, bareErrs, bareLat, _, _ := total(read(t, bare, Epoch(), bare.Now(), time.Minute), Epoch(), bare.Now())
	// The mirror draws from its own stream: the users' requests, all
	// answered by stable, are exactly those of the world without it.
	if req[0] != bareReq[0] || errs[0] != bareErrs[0] || !slices.Equal(lat[0], bareLat[0]) {
		t.Errorf("stable under a mirror: %v requests, %v errors; without it: %v, %v (want identical)", req[0], errs[0], bareReq[0], bareErrs[0])
	}
	near(t, "mirrored share of stable's requests", req[1]/req[0], 0.2, 0.01)
	near(t, "canary error ratio on mirrored copies", errs[1]/req[1], 0.5, 0.02)
	if got := w.CanaryRequests(); got != 0 {
		t.Errorf("CanaryRequests() = %d under a mirror at weight 0, want 0: no user got the canary's answer", got)
	}
	if got := w.MirroredRequests(); float64(got) != req[1] {
		t.Errorf("MirroredRequests() = %d, the canary's series count %v", got, req[1])
	}
}

func TestHeaderShareMustBeAFraction(t *testing.T) {
	_, err := ParseScenario([]byte(`
name: bad
traffic: {rps: 5, maxDuration: 1h, headerShare: 1.5}
expect: promote
`))
	if err == nil || !strings.Contains(err.Error(), "traffic.headerShare: must be a fraction in [0, 1], got 1.5") {
		t.Errorf("err = %v, want a traffic.headerShare range error", err)
	}
}
