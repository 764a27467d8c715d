package gpu

import "github.com/canarybot/canarybot/pkg/gpu/gpuapi"

// The gpu-agent's JSON API, defined in pkg/gpu/gpuapi so that its readers
// (the gates) need neither NVML nor cgo, and re-exported here for the
// collector and the agent that fill it in.
const (
	// APIPath is the path of the JSON endpoint.
	APIPath = gpuapi.APIPath
	// SinceParam is the query parameter that asks for History instead of
	// the latest Snapshot.
	SinceParam = gpuapi.SinceParam
)

// The API's types.
type (
	// Snapshot is gpuapi.Snapshot: every GPU of a node, read once.
	Snapshot = gpuapi.Snapshot
	// History is gpuapi.History: the agent's snapshots since a time.
	History = gpuapi.History
	// DeviceSample is gpuapi.DeviceSample: one reading of one GPU.
	DeviceSample = gpuapi.DeviceSample
	// MemoryUsage is gpuapi.MemoryUsage: a device's framebuffer use.
	MemoryUsage = gpuapi.MemoryUsage
	// XidEvent is gpuapi.XidEvent: one Xid error of a device.
	XidEvent = gpuapi.XidEvent
	// ProcessSample is gpuapi.ProcessSample: one compute process on a GPU.
	ProcessSample = gpuapi.ProcessSample
	// APIError is gpuapi.APIError: the body of every non-2xx answer.
	APIError = gpuapi.APIError
	// ClockEventReasons is gpuapi.ClockEventReasons: NVML's bitmask of
	// reasons a GPU's clocks are held below their maximum.
	ClockEventReasons = gpuapi.ClockEventReasons
)

// SlowdownReasons are gpuapi.SlowdownReasons: the reasons that mean the
// GPU slows itself down to protect itself.
const SlowdownReasons = gpuapi.SlowdownReasons

// AllReasons is gpuapi.AllReasons: every reason NVML defines a name for.
const AllReasons = gpuapi.AllReasons
