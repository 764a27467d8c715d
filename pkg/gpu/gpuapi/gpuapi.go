// Package gpuapi is the gpu-agent's JSON API: the snapshots of a node's
// GPUs that GET /api/v1/gpus serves and the gates (pkg/gates) read. It
// imports neither NVML nor cgo, so that the readers of the API do not link
// go-nvml; pkg/gpu, which fills these types from NVML, re-exports them.
package gpuapi

import (
	"time"

	"github.com/canarybot/canarybot/pkg/gpu/clockevent"
)

// The gpu-agent's JSON API (cmd/gpu-agent, package pkg/gpu/agent):
//
//	GET /api/v1/gpus                  -> Snapshot, the latest one
//	GET /api/v1/gpus?since=<RFC 3339> -> History, every kept snapshot at or after since
//
// Errors come as APIError with status 400 (bad query), 405 (not GET or
// HEAD), 503 (NVML not available on this host, or no snapshot could be
// taken) or 500.
const (
	// APIPath is the path of the JSON endpoint.
	APIPath = "/api/v1/gpus"
	// SinceParam is the query parameter that asks for History instead of
	// the latest Snapshot.
	SinceParam = "since"
)

// Snapshot is one reading of every GPU on a node, as GET /api/v1/gpus
// returns it.
type Snapshot struct {
	// Time is when the snapshot was taken; every device sample has the
	// same Time.
	Time time.Time `json:"time"`
	// Node is the Kubernetes node name the agent was given, or "".
	Node string `json:"node"`
	// Devices has one sample per GPU, in index order. A device that could
	// not be read is missing.
	Devices []DeviceSample `json:"devices"`
}

// History is the agent's ring of snapshots since a time, oldest first, as
// GET /api/v1/gpus?since=<RFC 3339> returns it.
type History struct {
	// Node is the Kubernetes node name the agent was given, or "".
	Node string `json:"node"`
	// Samples are the snapshots taken at or after since, oldest first;
	// empty, not null, when there are none.
	Samples []Snapshot `json:"samples"`
}

// XidEvent is one Xid error NVML reported for a device.
type XidEvent struct {
	// Code is the Xid, e.g. 79 (GPU has fallen off the bus) or 48
	// (double-bit ECC error).
	Code uint64 `json:"code"`
	// Time is when the agent received the event.
	Time time.Time `json:"time"`
}

// ProcessSample is one compute process running on a GPU.
type ProcessSample struct {
	// PID is the process id in the host's PID namespace, as NVML reports
	// it.
	PID uint32 `json:"pid"`
	// UsedBytes is the GPU memory the process uses; nil when NVML cannot
	// tell (e.g. without the privileges to see other containers' use).
	UsedBytes *uint64 `json:"usedBytes,omitempty"`
	// PodUID is the UID of the Kubernetes pod the process runs in, from
	// its cgroup; "" when it is not in a pod or its cgroup is unreadable.
	PodUID string `json:"podUID,omitempty"`
	// Pod is the pod's name, from the kubelet's pod log directories; ""
	// when unknown.
	Pod string `json:"pod,omitempty"`
	// Namespace is the pod's namespace, found like Pod; "" when unknown.
	Namespace string `json:"namespace,omitempty"`
}

// APIError is the body of every non-2xx answer of the JSON endpoint.
type APIError struct {
	// Error says what went wrong, e.g. "NVML not available on this host:
	// ERROR_LIBRARY_NOT_FOUND".
	Error string `json:"error"`
}

// DeviceSample is one reading of one GPU's health. A pointer field is nil
// when the device does not support that metric (nvml.ERROR_NOT_SUPPORTED,
// e.g. ECC counters on a GPU with ECC disabled).
type DeviceSample struct {
	// Index is NVML's device index, 0-based.
	Index int `json:"index"`
	// UUID is the device's stable identity.
	UUID string `json:"uuid"`
	// Name is the product name.
	Name string `json:"name"`
	// Time is when the snapshot was taken, from the collector's clock.
	Time time.Time `json:"time"`

	// Memory is the framebuffer use.
	Memory *MemoryUsage `json:"memory,omitempty"`
	// UtilizationPercent is the share of the last sample period in which
	// a kernel was running, 0 to 100.
	UtilizationPercent *uint32 `json:"utilizationPercent,omitempty"`
	// TemperatureC is the GPU die temperature in degrees Celsius.
	TemperatureC *uint32 `json:"temperatureC,omitempty"`
	// PowerWatts is the board's power draw.
	PowerWatts *float64 `json:"powerWatts,omitempty"`
	// ClockEventReasons is the bitmask of reasons the clocks are held
	// below their maximum (NVML's clock event, formerly throttle, reasons).
	ClockEventReasons *ClockEventReasons `json:"clockEventReasons,omitempty"`
	// ClockEventReasonNames decodes ClockEventReasons, e.g.
	// ["SwPowerCap", "HwSlowdown"]; empty when no reason is set.
	ClockEventReasonNames []string `json:"clockEventReasonNames,omitempty"`
	// ECCUncorrectedVolatile counts uncorrected memory errors since the
	// driver was last loaded.
	ECCUncorrectedVolatile *uint64 `json:"eccUncorrectedVolatile,omitempty"`
	// ECCUncorrectedAggregate counts uncorrected memory errors over the
	// device's lifetime.
	ECCUncorrectedAggregate *uint64 `json:"eccUncorrectedAggregate,omitempty"`
	// ECCCorrectedVolatile counts corrected (single-bit) memory errors
	// since the driver was last loaded.
	ECCCorrectedVolatile *uint64 `json:"eccCorrectedVolatile,omitempty"`
	// ECCCorrectedAggregate counts corrected memory errors over the
	// device's lifetime.
	ECCCorrectedAggregate *uint64 `json:"eccCorrectedAggregate,omitempty"`
	// Xid lists the Xid errors received for this device since the
	// previous snapshot, oldest first. The collector leaves it empty: the
	// agent, which watches Xid events with WaitXid, fills it in.
	Xid []XidEvent `json:"xid,omitempty"`
	// Processes are the compute processes running on the device, with
	// their Kubernetes pod where it is known; empty when there are none
	// or the device cannot list them.
	Processes []ProcessSample `json:"processes,omitempty"`
}

// MemoryUsage is a device's framebuffer use in bytes.
type MemoryUsage struct {
	// UsedBytes is allocated framebuffer memory, including what the
	// driver reserves.
	UsedBytes uint64 `json:"usedBytes"`
	// TotalBytes is the framebuffer size.
	TotalBytes uint64 `json:"totalBytes"`
}

// UsedFraction is UsedBytes / TotalBytes, or 0 when TotalBytes is 0.
func (m MemoryUsage) UsedFraction() float64 {
	if m.TotalBytes == 0 {
		return 0
	}
	return float64(m.UsedBytes) / float64(m.TotalBytes)
}

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
