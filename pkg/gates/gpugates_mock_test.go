//go:build cgo

package gates_test

import (
	"context"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/canarybot/canarybot/internal/gpusim"
	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/signals"
)

// Each GPU fault, raised on go-nvml's mock DGX H100 under a running
// gpu-agent and read through its JSON API, fails its own gate and no
// other; a healthy canary GPU passes them all.
func TestGPUGatesOnTheMock(t *testing.T) {
	plan := gpuGatePlan(t)
	for _, tc := range []struct {
		fault string
		raise func(n *gpusim.Node)
	}{
		{"", func(*gpusim.Node) {}},
		{"memory", func(n *gpusim.Node) { n.SetMemoryUsed(1, n.MemoryTotal()/100*97) }},
		{"temperature", func(n *gpusim.Node) { n.SetTemperature(1, 90) }},
		{"ecc", func(n *gpusim.Node) { n.SetECC(1, 1) }},
		{"xid", func(n *gpusim.Node) { n.RaiseXid(1, 79) }},
		{"throttle", func(n *gpusim.Node) { n.SetClockEventReasons(1, nvml.ClocksThrottleReasonHwThermalSlowdown) }},
		// An Xid the plan does not call critical, and one on a GPU that no
		// side uses, fail nothing.
		{"", func(n *gpusim.Node) { n.RaiseXid(1, 95); n.RaiseXid(2, 79) }},
		// Power capping holds the clocks down, but is not a slowdown.
		{"", func(n *gpusim.Node) { n.SetClockEventReasons(1, nvml.ClocksEventReasonSwPowerCap) }},
	} {
		name := tc.fault
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			node := gpusim.Start(t, gpuPods()...)
			start := time.Now().Truncate(time.Second)
			time.Sleep(600 * time.Millisecond)
			tc.raise(node)
			time.Sleep(2 * time.Second)
			end := time.Now()
			s := &signals.Series{}
			for at := start; at.Add(time.Second).Before(end); at = at.Add(time.Second) {
				s.Intervals = append(s.Intervals, signals.Interval{Start: at, End: at.Add(time.Second),
					GPUMemoryUsed: signals.NaN2(), GPUTempC: signals.NaN2(), ECCUncorrected: signals.NaN2()})
			}
			spec := plan.Spec.Signals.GPU
			withAgent := *spec
			withAgent.Agents = []string{node.URL()}
			if err := (gates.AgentGPU{}).FillGPU(context.Background(), &withAgent, s, time.Second); err != nil {
				t.Fatal(err)
			}
			sg := &gates.SignalGates{SourceFor: func(*canary.SignalsSpec) (signals.Source, error) { return staticSource{s}, nil }}
			for _, g := range plan.Spec.Gates {
				r, err := sg.Evaluate(context.Background(), g, canary.Window{Start: start, Now: end})
				if err != nil {
					t.Fatal(err)
				}
				want := canary.VerdictSuccessful
				if g.Name == tc.fault {
					want = canary.VerdictFailed
				}
				if r.Verdict != want {
					t.Errorf("gate %s = %s (%s), want %s", g.Name, r.Verdict, r.Reason, want)
				}
			}
		})
	}
}
