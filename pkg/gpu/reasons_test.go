//go:build cgo

package gpu

import (
	"slices"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/canarybot/canarybot/pkg/gpu/clockevent"
)

func TestClockEventReasons(t *testing.T) {
	for _, tc := range []struct {
		r        ClockEventReasons
		names    []string
		str      string
		slowdown ClockEventReasons
	}{
		{0, nil, "None", 0},
		{nvml.ClocksEventReasonGpuIdle, []string{"GpuIdle"}, "GpuIdle", 0},
		{
			nvml.ClocksThrottleReasonHwSlowdown | nvml.ClocksEventReasonSwThermalSlowdown | nvml.ClocksThrottleReasonHwPowerBrakeSlowdown,
			[]string{"HwSlowdown", "SwThermalSlowdown", "HwPowerBrakeSlowdown"},
			"HwSlowdown|SwThermalSlowdown|HwPowerBrakeSlowdown",
			8 | 32 | 128,
		},
		{
			AllReasons,
			[]string{"GpuIdle", "ApplicationsClocksSetting", "SwPowerCap", "HwSlowdown", "SyncBoost",
				"SwThermalSlowdown", "HwThermalSlowdown", "HwPowerBrakeSlowdown", "DisplayClockSetting",
				"BoardLimit", "Reliability"},
			"GpuIdle|ApplicationsClocksSetting|SwPowerCap|HwSlowdown|SyncBoost|SwThermalSlowdown|" +
				"HwThermalSlowdown|HwPowerBrakeSlowdown|DisplayClockSetting|BoardLimit|Reliability",
			SlowdownReasons,
		},
		{
			nvml.ClocksEventReasonSwPowerCap | 1<<12 | 1<<63,
			[]string{"SwPowerCap", "Unknown(0x8000000000001000)"},
			"SwPowerCap|Unknown(0x8000000000001000)",
			0,
		},
	} {
		if got := tc.r.Names(); !slices.Equal(got, tc.names) {
			t.Errorf("%#x.Names() = %q, want %q", uint64(tc.r), got, tc.names)
		}
		if got := tc.r.String(); got != tc.str {
			t.Errorf("%#x.String() = %q, want %q", uint64(tc.r), got, tc.str)
		}
		if got := tc.r.Slowdown(); got != tc.slowdown {
			t.Errorf("%#x.Slowdown() = %#x, want %#x", uint64(tc.r), uint64(got), uint64(tc.slowdown))
		}
	}
}

// TestClockEventBitsAreNVMLs keeps pkg/gpu/clockevent's NVML-free table
// equal to go-nvml's constants.
func TestClockEventBitsAreNVMLs(t *testing.T) {
	for name, bit := range map[string]uint64{
		"GpuIdle":                   nvml.ClocksEventReasonGpuIdle,
		"ApplicationsClocksSetting": nvml.ClocksEventReasonApplicationsClocksSetting,
		"SwPowerCap":                nvml.ClocksEventReasonSwPowerCap,
		"HwSlowdown":                nvml.ClocksThrottleReasonHwSlowdown,
		"SyncBoost":                 nvml.ClocksEventReasonSyncBoost,
		"SwThermalSlowdown":         nvml.ClocksEventReasonSwThermalSlowdown,
		"HwThermalSlowdown":         nvml.ClocksThrottleReasonHwThermalSlowdown,
		"HwPowerBrakeSlowdown":      nvml.ClocksThrottleReasonHwPowerBrakeSlowdown,
		"DisplayClockSetting":       nvml.ClocksEventReasonDisplayClockSetting,
		"BoardLimit":                nvml.ClocksEventReasonBoardLimit,
		"Reliability":               nvml.ClocksEventReasonReliability,
	} {
		if got, ok := clockevent.Bit(name); !ok || got != bit {
			t.Errorf("clockevent.Bit(%q) = %#x, %v; NVML's is %#x", name, got, ok, bit)
		}
	}
	if uint64(AllReasons) != nvml.ClocksEventReasonAll {
		t.Errorf("AllReasons = %#x, NVML's ClocksEventReasonAll = %#x", uint64(AllReasons), nvml.ClocksEventReasonAll)
	}
}
