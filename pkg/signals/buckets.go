package signals

// vLLM's histogram bucket bounds, in seconds. The simulator (pkg/sim) and
// the simulated model servers (internal/modelsim) both count latencies in
// them, so that what gates read of either has vLLM's resolution.

// E2EBuckets are vLLM's end-to-end request latency buckets
// (vllm:e2e_request_latency_seconds), with finer ones below 0.3 s.
func E2EBuckets() []float64 {
	return []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25,
		0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0}
}

// TTFTBuckets are vLLM's time-to-first-token buckets
// (vllm:time_to_first_token_seconds).
func TTFTBuckets() []float64 {
	return []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
		0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}
}

// TPOTBuckets are vLLM's time-per-output-token buckets
// (vllm:time_per_output_token_seconds).
func TPOTBuckets() []float64 {
	return []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5}
}
