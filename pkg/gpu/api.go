package gpu

import "time"

// The gpu-agent's JSON API (canarybot gpu-agent, package pkg/gpu/agent):
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
