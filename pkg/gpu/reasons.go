package gpu

import "github.com/canarybot/canarybot/pkg/gpu/clockevent"

// ClockEventReasons is NVML's bitmask of reasons a GPU's clocks are held
// below their maximum, e.g. nvml.ClocksThrottleReasonHwSlowdown. NVML
// renamed "throttle reasons" to "clock event reasons"; the bits are the
// same.
type ClockEventReasons uint64

// SlowdownReasons are the reasons that mean the GPU is slowed down to
// protect itself (heat, power brake, hardware slowdown), as opposed to
// being idle, capped by settings, or at its power budget.
const SlowdownReasons = ClockEventReasons(clockevent.Slowdown)

// AllReasons is every reason NVML defines a name for.
const AllReasons = ClockEventReasons(clockevent.All)

// Names decodes the set reasons in bit order, e.g. ["SwThermalSlowdown",
// "HwThermalSlowdown"]. Bits NVML does not define are named together as
// "Unknown(0x…)". It returns nil when no reason is set.
func (r ClockEventReasons) Names() []string { return clockevent.Names(uint64(r)) }

// String joins Names with "|", or returns "None".
func (r ClockEventReasons) String() string { return clockevent.String(uint64(r)) }

// Slowdown reports the reasons in r that are SlowdownReasons.
func (r ClockEventReasons) Slowdown() ClockEventReasons {
	return r & SlowdownReasons
}
