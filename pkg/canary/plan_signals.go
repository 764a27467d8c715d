package canary

// Signal presets: metric names of common model servers.
const (
	PresetVLLM   = "vllm"
	PresetKServe = "kserve"
)

// Judge modes.
const (
	JudgeConfirm = "confirm"
	JudgeScreen  = "screen"
)

// Judge metrics.
const (
	MetricErrors  = "errors"
	MetricLatency = "latency"
	MetricTTFT    = "ttft"
	// MetricTPOT is vLLM's time per output token, opt-in: list it in a
	// judge's metrics to test it.
	MetricTPOT = "tpot"
	// MetricLatencyTail tests end-to-end latency above stable's p95
	// rather than its median, so that a slow tail (one request in ten ten
	// times slower) that barely moves the median is caught. It can only
	// fail a gate: a tail no worse than stable's is no evidence of the
	// rest, so it never holds a promotion back.
	MetricLatencyTail = "latencyTail"
)

// FailOnly reports whether a judge metric can only fail a gate.
func FailOnly(metric string) bool { return metric == MetricLatencyTail }

// Gauge signals.
const (
	SignalKVCache    = "kvCache"
	SignalQueueDepth = "queueDepth"
	SignalGPUMemory  = "gpuMemory"
	SignalGPUTemp    = "gpuTemperature"
	SignalXid        = "xid"
	// SignalECC counts uncorrected (double-bit) ECC errors on the canary's
	// GPUs; SignalThrottle is the share of samples in which they were
	// slowed down to protect themselves.
	SignalECC      = "eccUncorrected"
	SignalThrottle = "throttle"
)

// GPU signal presets: whose metrics the GPU gauges are read from.
const (
	// GPUPresetCanarybot reads canarybot gpu-agent's canarybot_gpu_*
	// metrics; each side's GPUs are those running its pods' processes.
	GPUPresetCanarybot = "canarybot"
	// GPUPresetDCGM reads NVIDIA dcgm-exporter's DCGM_FI_* metrics, whose
	// device series carry pod and namespace labels when its Kubernetes
	// mapping is on.
	GPUPresetDCGM = "dcgm"
)

// GPUSignals says where the GPU gauges of each side come from: the GPU
// metrics in Prometheus, or gpu-agents' JSON API read directly.
type GPUSignals struct {
	// Preset is canarybot (default) or dcgm.
	Preset string `json:"preset,omitempty"`
	// Stable and Canary select each side's pods by label matchers on pod,
	// namespace (and container, for dcgm). A value starting with "~" is an
	// anchored regular expression, e.g. {pod: "~qwen-canary-.*"}.
	Stable map[string]string `json:"stable"`
	Canary map[string]string `json:"canary"`
	// Agents are gpu-agent base URLs (http://node:9836) read directly,
	// GET /api/v1/gpus?since=…, instead of Prometheus: for single-node
	// setups without Prometheus scraping the agent. Preset canarybot only;
	// matchers may then name pod, namespace and pod_uid.
	Agents []string `json:"agents,omitempty"`
	// Metrics overrides the preset's metric names, by signal: memoryUsed,
	// memoryTotal (canarybot) or memoryFree (dcgm), temperature, xid,
	// eccUncorrected, throttle, and process (canarybot's per-process
	// series that maps GPUs to pods).
	Metrics map[string]string `json:"metrics,omitempty"`
}

// SignalsSpec selects the stable and the canary series of a preset's
// metrics, by label matchers, e.g. {role: canary}.
type SignalsSpec struct {
	Preset string            `json:"preset"`
	Stable map[string]string `json:"stable"`
	Canary map[string]string `json:"canary"`
	// Step is the interval the gates slice time into; 10s by default.
	Step *Duration `json:"step,omitempty"`
	// Metrics overrides the preset's metric names, by signal: requests,
	// errors, latency, ttft, tpot, predictions, kvCache, queueDepth.
	Metrics map[string]string `json:"metrics,omitempty"`
	// GPU, when set, reads the GPU signals (gpuMemory, gpuTemperature,
	// xid, eccUncorrected, throttle) of each side's GPUs.
	GPU *GPUSignals `json:"gpu,omitempty"`
}

// Signal statistics a threshold gate can measure.
const (
	StatLatencyP95 = "latencyP95"
	StatTTFTP95    = "ttftP95"
	StatErrorRate  = "errorRate"
	StatKVCache    = "kvCache"
	StatQueueDepth = "queueDepth"
)

// SignalStat is a statistic of the canary's signals over a trailing window.
type SignalStat struct {
	Stat string `json:"stat"`
	// Window is the trailing span each measurement covers; 1m by default.
	Window *Duration `json:"window,omitempty"`
}

// JudgeGate compares canary against stable with anytime-valid sequential
// tests: it may look at every sample and keeps its false-alarm rate.
type JudgeGate struct {
	// Mode is confirm (default): pass only on evidence that no metric is
	// materially worse; or screen: pass while there is no evidence of
	// harm, so that weights can rise and evidence accrue faster. Use
	// screen on early steps and confirm before full traffic. Both fail on
	// evidence of harm, and both read the whole rollout so far.
	Mode string `json:"mode,omitempty"`
	// Metrics to test; by default errors, latency and ttft (vllm) or
	// errors and latency (kserve). The vllm preset also offers tpot.
	Metrics []string `json:"metrics,omitempty"`
	// Alpha bounds the chance of reverting a canary that is not worse,
	// over the whole rollout, split evenly across metrics. Default 0.05.
	Alpha *float64 `json:"alpha,omitempty"`
	// Beta bounds the chance of passing a canary worse than the margin,
	// split evenly across metrics. Default 0.01.
	Beta *float64 `json:"beta,omitempty"`
	// Margins are, per metric, the ratio of the canary's event rate to
	// stable's that counts as materially worse (errors 2, latency and ttft
	// 1.3: the share of requests slower than stable's median).
	Margins map[string]float64 `json:"margins,omitempty"`
	// Warmup is ignored after the canary's first traffic: cold caches and
	// weights loading are not regressions. Default 2m.
	Warmup *Duration `json:"warmup,omitempty"`
	// MinCanaryRequests must be served in the current step before it can
	// pass. Default 50.
	MinCanaryRequests *int `json:"minCanaryRequests,omitempty"`
	// Watch, in confirm mode, holds the gate until the canary has been
	// watched this long since its first traffic, so that a fault that
	// recurs (a burst every few minutes) shows before the rollout can
	// promote. Zero (the default) adds no wait: the plan's steps and
	// pauses alone decide how long it watches (docs/judge.md).
	Watch *Duration `json:"watch,omitempty"`
	// ErrorRateFloor: the errors metric also passes on evidence that the
	// canary's error rate is below max(floor, margin × stable's rate before
	// the test), which concludes for rare errors long before a ratio against
	// stable's few errors can. Default 0.01: an error rate proven under 1%
	// is within budget.
	ErrorRateFloor *float64 `json:"errorRateFloor,omitempty"`
	// Exposure, when set, is the canary request count after which, with no
	// evidence of harm, a metric passes even if no test has concluded. Off
	// by default: a rollout without evidence holds instead.
	Exposure *int `json:"exposure,omitempty"`
	// Guardrails are business and quality metrics, counter pairs where
	// higher is better, tested beside Metrics (see Guardrail).
	Guardrails []Guardrail `json:"guardrails,omitempty"`
}

// DriftGate compares the canary's prediction-class distribution with
// stable's by the population stability index (PSI).
type DriftGate struct {
	// Pass below, Fail above; in between is Inconclusive. Defaults 0.1, 0.2.
	Pass *float64 `json:"pass,omitempty"`
	Fail *float64 `json:"fail,omitempty"`
	// MinPredictions the canary must have made before a verdict. Default 500.
	MinPredictions *int `json:"minPredictions,omitempty"`
}

// GaugeGate bounds a canary gauge: its value, and where its trend will
// take it within Horizon.
type GaugeGate struct {
	Signal string   `json:"signal"`
	Max    *float64 `json:"max,omitempty"`
	// Horizon projects the canary's linear trend this far ahead and fails
	// when the projection crosses Max. Zero checks the current value only.
	Horizon *Duration `json:"horizon,omitempty"`
	// Codes, for the xid signal: the Xid codes that fail the gate; empty
	// means any.
	Codes []int `json:"codes,omitempty"`
	// MaxAboveStable fails the gate when the canary's gauge, averaged over
	// its last minute of samples, exceeds stable's over the same samples
	// by more than this, in the gauge's unit (e.g. 10 °C, 5 queued
	// requests): a level both sides share is not the canary's doing. For
	// kvCache, queueDepth, gpuMemory and gpuTemperature; with it alone,
	// no absolute max is defaulted.
	MaxAboveStable *float64 `json:"maxAboveStable,omitempty"`
	// MaxRatePerMinute fails the gate when the canary gauge's trend (the
	// least-squares slope of its last 30 samples) rises faster than this
	// per minute, e.g. GPU memory creeping 0.01 (1%) a minute.
	MaxRatePerMinute *float64 `json:"maxRatePerMinute,omitempty"`
	// Reasons, for the throttle signal: the NVML clock event reasons that
	// count as throttling; by default the slowdowns (HwSlowdown,
	// SwThermalSlowdown, HwThermalSlowdown, HwPowerBrakeSlowdown).
	Reasons []string `json:"reasons,omitempty"`
	// Window, for the throttle signal: the trailing span whose share of
	// throttled samples is bounded by Max. Default 5m.
	Window *Duration `json:"window,omitempty"`
}
