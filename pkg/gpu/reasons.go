package gpu

import (
	"fmt"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// ClockEventReasons is NVML's bitmask of reasons a GPU's clocks are held
// below their maximum, e.g. nvml.ClocksThrottleReasonHwSlowdown. NVML
// renamed "throttle reasons" to "clock event reasons"; the bits are the
// same.
type ClockEventReasons uint64

// SlowdownReasons are the reasons that mean the GPU is slowed down to
// protect itself (heat, power brake, hardware slowdown), as opposed to
// being idle, capped by settings, or at its power budget.
const SlowdownReasons ClockEventReasons = nvml.ClocksThrottleReasonHwSlowdown |
	nvml.ClocksThrottleReasonHwThermalSlowdown |
	nvml.ClocksThrottleReasonHwPowerBrakeSlowdown |
	nvml.ClocksEventReasonSwThermalSlowdown

// AllReasons is every reason NVML defines a name for.
const AllReasons ClockEventReasons = nvml.ClocksEventReasonAll

// Names decodes the set reasons in bit order, e.g. ["SwThermalSlowdown",
// "HwThermalSlowdown"]. Bits NVML does not define are named together as
// "Unknown(0x…)". It returns nil when no reason is set.
func (r ClockEventReasons) Names() []string {
	var names []string
	var unknown ClockEventReasons
	for bit := ClockEventReasons(1); bit != 0 && bit <= r; bit <<= 1 {
		if r&bit == 0 {
			continue
		}
		if name := reasonName(bit); name != "" {
			names = append(names, name)
		} else {
			unknown |= bit
		}
	}
	if unknown != 0 {
		names = append(names, fmt.Sprintf("Unknown(%#x)", uint64(unknown)))
	}
	return names
}

// reasonName names one reason bit, or returns "" for a bit NVML does not
// define.
func reasonName(bit ClockEventReasons) string {
	switch bit {
	case nvml.ClocksEventReasonGpuIdle:
		return "GpuIdle"
	case nvml.ClocksEventReasonApplicationsClocksSetting:
		return "ApplicationsClocksSetting"
	case nvml.ClocksEventReasonSwPowerCap:
		return "SwPowerCap"
	case nvml.ClocksThrottleReasonHwSlowdown:
		return "HwSlowdown"
	case nvml.ClocksEventReasonSyncBoost:
		return "SyncBoost"
	case nvml.ClocksEventReasonSwThermalSlowdown:
		return "SwThermalSlowdown"
	case nvml.ClocksThrottleReasonHwThermalSlowdown:
		return "HwThermalSlowdown"
	case nvml.ClocksThrottleReasonHwPowerBrakeSlowdown:
		return "HwPowerBrakeSlowdown"
	case nvml.ClocksEventReasonDisplayClockSetting:
		return "DisplayClockSetting"
	case nvml.ClocksEventReasonBoardLimit:
		return "BoardLimit"
	case nvml.ClocksEventReasonReliability:
		return "Reliability"
	default:
		return ""
	}
}

// String joins Names with "|", or returns "None".
func (r ClockEventReasons) String() string {
	if r == 0 {
		return "None"
	}
	return strings.Join(r.Names(), "|")
}

// Slowdown reports the reasons in r that are SlowdownReasons.
func (r ClockEventReasons) Slowdown() ClockEventReasons {
	return r & SlowdownReasons
}
