// Package clockevent names NVML's clock event (formerly "throttle")
// reason bits without importing NVML, so that code which only reads them
// from metrics (dcgm-exporter's DCGM_FI_DEV_CLOCK_THROTTLE_REASONS bitmask,
// the gpu-agent's reason labels) needs no cgo. The values are NVML's own
// (nvml.h, nvmlClocksEventReason*); pkg/gpu's tests check them against
// go-nvml's constants.
package clockevent

import (
	"fmt"
	"strings"
)

// The reason bits.
const (
	GpuIdle                   uint64 = 0x1
	ApplicationsClocksSetting uint64 = 0x2
	SwPowerCap                uint64 = 0x4
	HwSlowdown                uint64 = 0x8
	SyncBoost                 uint64 = 0x10
	SwThermalSlowdown         uint64 = 0x20
	HwThermalSlowdown         uint64 = 0x40
	HwPowerBrakeSlowdown      uint64 = 0x80
	DisplayClockSetting       uint64 = 0x100
	BoardLimit                uint64 = 0x200
	Reliability               uint64 = 0x400
)

// All is every reason NVML defines a name for.
const All = GpuIdle | ApplicationsClocksSetting | SwPowerCap | HwSlowdown | SyncBoost |
	SwThermalSlowdown | HwThermalSlowdown | HwPowerBrakeSlowdown | DisplayClockSetting |
	BoardLimit | Reliability

// Slowdown are the reasons that mean the GPU slows itself down to protect
// itself (heat, power brake, hardware slowdown), as opposed to being idle,
// capped by settings, or at its power budget.
const Slowdown = HwSlowdown | HwThermalSlowdown | HwPowerBrakeSlowdown | SwThermalSlowdown

// names lists the reason names in bit order.
func names() [11]string {
	return [...]string{
		"GpuIdle", "ApplicationsClocksSetting", "SwPowerCap", "HwSlowdown", "SyncBoost",
		"SwThermalSlowdown", "HwThermalSlowdown", "HwPowerBrakeSlowdown", "DisplayClockSetting",
		"BoardLimit", "Reliability",
	}
}

// Name names one reason bit, or returns "" for a bit NVML does not define.
func Name(bit uint64) string {
	for i, n := range names() {
		if bit == 1<<i {
			return n
		}
	}
	return ""
}

// Bit returns the bit a reason name stands for, and whether it is known.
func Bit(name string) (uint64, bool) {
	for i, n := range names() {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// Names decodes the set reasons of mask in bit order, e.g.
// ["SwThermalSlowdown", "HwThermalSlowdown"]. Bits NVML does not define
// are named together as "Unknown(0x…)". It returns nil when no bit is set.
func Names(mask uint64) []string {
	var out []string
	var unknown uint64
	for bit := uint64(1); bit != 0 && bit <= mask; bit <<= 1 {
		if mask&bit == 0 {
			continue
		}
		if n := Name(bit); n != "" {
			out = append(out, n)
		} else {
			unknown |= bit
		}
	}
	if unknown != 0 {
		out = append(out, fmt.Sprintf("Unknown(%#x)", unknown))
	}
	return out
}

// SlowdownNames are the names of the Slowdown reasons.
func SlowdownNames() []string { return Names(Slowdown) }

// String joins Names with "|", or returns "None".
func String(mask uint64) string {
	if mask == 0 {
		return "None"
	}
	return strings.Join(Names(mask), "|")
}
