package gates

import (
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

// ms builds measurements from verdict letters: S(uccessful), F(ailed),
// I(nconclusive), E(rror), R(unning), ?(empty).
func ms(letters string) []canary.Measurement {
	verdicts := map[rune]canary.Verdict{
		'S': canary.VerdictSuccessful, 'F': canary.VerdictFailed,
		'I': canary.VerdictInconclusive, 'E': canary.VerdictError,
		'R': canary.VerdictRunning, '?': "",
	}
	var out []canary.Measurement
	for _, l := range letters {
		out = append(out, canary.Measurement{Verdict: verdicts[l]})
	}
	return out
}

func TestAssess(t *testing.T) {
	def := Limits{Count: 3, ConsecutiveErrorLimit: 4}
	tests := []struct {
		name   string
		ms     string
		limits Limits
		want   canary.Verdict
	}{
		{"no measurement", "", def, canary.VerdictRunning},
		{"below count", "SS", def, canary.VerdictRunning},
		{"count reached", "SSS", def, canary.VerdictSuccessful},
		{"count exceeded", "SSSS", def, canary.VerdictSuccessful},
		{"no count runs indefinitely", "SSSSSSSSSS", Limits{ConsecutiveErrorLimit: 4}, canary.VerdictRunning},

		{"one failure over limit 0", "SF", def, canary.VerdictFailed},
		{"failure within limit 1", "SF", Limits{Count: 3, FailureLimit: 1, ConsecutiveErrorLimit: 4}, canary.VerdictRunning},
		{"failures over limit 1", "FSF", Limits{Count: 5, FailureLimit: 1, ConsecutiveErrorLimit: 4}, canary.VerdictFailed},
		{"count reached with failures within limit", "SFS", Limits{Count: 3, FailureLimit: 1, ConsecutiveErrorLimit: 4}, canary.VerdictSuccessful},

		{"one inconclusive over limit 0", "I", def, canary.VerdictInconclusive},
		{"inconclusive within limit 2", "IIS", Limits{Count: 4, InconclusiveLimit: 2, ConsecutiveErrorLimit: 4}, canary.VerdictRunning},
		{"inconclusive over limit 2", "IIIS", Limits{Count: 9, InconclusiveLimit: 2, ConsecutiveErrorLimit: 4}, canary.VerdictInconclusive},
		{"count reached with inconclusive within limit", "ISS", Limits{Count: 3, InconclusiveLimit: 1, ConsecutiveErrorLimit: 4}, canary.VerdictSuccessful},

		{"errors at limit", "EEEE", def, canary.VerdictRunning},
		{"errors over limit", "EEEEE", def, canary.VerdictError},
		{"error limit 0", "SE", Limits{Count: 3}, canary.VerdictError},
		{"only trailing errors count", "EEESEEE", Limits{Count: 3, ConsecutiveErrorLimit: 3}, canary.VerdictRunning},
		{"trailing errors over limit after success", "SEEEE", Limits{Count: 3, ConsecutiveErrorLimit: 3}, canary.VerdictError},
		{"errors do not count towards count", "SES", def, canary.VerdictRunning},
		{"count reached despite errors", "SESES", def, canary.VerdictSuccessful},
		{"errors within limit after count reached", "SSSEE", def, canary.VerdictSuccessful},

		{"in-flight last measurement", "FFR", def, canary.VerdictRunning},
		{"empty last verdict is in flight", "F?", def, canary.VerdictRunning},
		{"unknown verdict in the middle is ignored", "S?SS", def, canary.VerdictSuccessful},

		{"failed outranks inconclusive", "FI", def, canary.VerdictFailed},
		{"failed outranks error", "FEEEEE", def, canary.VerdictFailed},
		{"inconclusive outranks error", "IEEEEE", def, canary.VerdictInconclusive},
		{"failed outranks count", "SSSF", def, canary.VerdictFailed},
		{"inconclusive outranks count", "SSSI", def, canary.VerdictInconclusive},
		{"error outranks count", "SSSEEEEE", def, canary.VerdictError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Assess(ms(tt.ms), tt.limits); got != tt.want {
				t.Errorf("Assess(%q, %+v) = %s, want %s", tt.ms, tt.limits, got, tt.want)
			}
		})
	}
}

func TestCount(t *testing.T) {
	got := Count(ms("SFIEESRE?E"))
	want := Tally{Successful: 2, Failed: 1, Inconclusive: 1, Errors: 4, Taken: 4, ConsecutiveErrors: 2}
	if got != want {
		t.Errorf("Count = %+v, want %+v", got, want)
	}
}

func TestLimitsFor(t *testing.T) {
	two, three, zero := 2, 3, 0
	tests := []struct {
		name string
		gate *canary.ThresholdGate
		want Limits
	}{
		{"nil gate", nil, Limits{Count: DefaultCount, ConsecutiveErrorLimit: DefaultConsecutiveErrorLimit}},
		{"unset fields", &canary.ThresholdGate{}, Limits{Count: 5, ConsecutiveErrorLimit: 4}},
		{"set fields", &canary.ThresholdGate{Count: &three, FailureLimit: &two, InconclusiveLimit: &three, ConsecutiveErrorLimit: &zero},
			Limits{Count: 3, FailureLimit: 2, InconclusiveLimit: 3, ConsecutiveErrorLimit: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LimitsFor(tt.gate); got != tt.want {
				t.Errorf("LimitsFor = %+v, want %+v", got, tt.want)
			}
		})
	}
}
