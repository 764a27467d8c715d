package sim

import (
	"bytes"
	"testing"
)

// TestWriteOpenMetricsStatus: the status counter holds, at every sample,
// the errors under its error class and the other requests under its OK
// class, as vLLM's OpenAI server counts http_requests_total{status}.
func TestWriteOpenMetricsStatus(t *testing.T) {
	w, _ := startedWorld(t, mustScenario(t, exportScenario), 5, 20, 30, 50)
	names := vllmNames
	names.Status = StatusCounter{Name: "http_requests_total", Label: "status", Error: "5xx", OK: "2xx"}
	labels := [2]map[string]string{{"role": "stable"}, {"role": "canary"}}
	var buf bytes.Buffer
	if err := WriteOpenMetrics(&buf, names, ExportRun{World: w, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	series := parseOpenMetrics(t, buf.String())
	for _, side := range []string{`{role="stable"`, `{role="canary"`} {
		requests := series["vllm:e2e_request_latency_seconds_count"+side+"}"]
		errs := series["canarybot_sim:request_errors_total"+side+"}"]
		bad := series["http_requests_total"+side+`,status="5xx"}`]
		ok := series["http_requests_total"+side+`,status="2xx"}`]
		if len(requests) == 0 || len(bad) != len(requests) || len(ok) != len(requests) || len(errs) != len(requests) {
			t.Fatalf("%s: %d requests, %d errors, %d 5xx and %d 2xx samples; want as many of each, at least one",
				side, len(requests), len(errs), len(bad), len(ok))
		}
		for i, r := range requests {
			if bad[i].ts != r.ts || ok[i].ts != r.ts || bad[i].value != errs[i].value || bad[i].value+ok[i].value != r.value {
				t.Fatalf("%s sample %d: 5xx %+v, 2xx %+v; want errors %v and requests %v at %v", side, i, bad[i], ok[i],
					errs[i].value, r.value, r.ts)
			}
		}
		if last := bad[len(bad)-1].value; last == 0 {
			t.Errorf("%s: no errors counted at all", side)
		}
	}
}
