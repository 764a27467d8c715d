package gates

import (
	"testing"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestReason(t *testing.T) {
	msg := func(letters, last string) []canary.Measurement {
		out := ms(letters)
		for i := range out {
			out[i].Message = string(letters[i]) + last
		}
		return out
	}
	l := Limits{Count: 3, FailureLimit: 1, InconclusiveLimit: 2, ConsecutiveErrorLimit: 1}
	next := time.Date(2025, 6, 1, 12, 3, 0, 0, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		name    string
		verdict canary.Verdict
		ms      []canary.Measurement
		next    time.Time
		want    string
	}{
		{"failed names the last failure", canary.VerdictFailed, msg("FSF", "!"), time.Time{},
			"2 of 3 measurements failed (limit 1): F!"},
		{"inconclusive", canary.VerdictInconclusive, msg("IIIS", "?"), time.Time{},
			"3 of 4 measurements inconclusive (limit 2): I?"},
		{"error counts trailing errors only", canary.VerdictError, msg("ESEE", " refused"), time.Time{},
			"2 consecutive measurement errors (limit 1): E refused"},
		{"successful", canary.VerdictSuccessful, msg("SFSE", "."), time.Time{},
			"2 of 4 measurements successful, count 3 reached; 1 failed (limit 1), 0 inconclusive (limit 2), 1 errored; last: S."},
		{"successful without measurements does not panic", canary.VerdictSuccessful, nil, time.Time{},
			"0 of 0 measurements successful, count 3 reached; 0 failed (limit 1), 0 inconclusive (limit 2), 0 errored; last: "},
		{"running before the first measurement", canary.VerdictRunning, nil, next,
			"no measurement taken yet; next measurement at 2025-06-01T10:03:00Z"},
		{"running", canary.VerdictRunning, msg("SE", "#"), next,
			"1 of 3 measurements counted; 0 failed (limit 1), 0 inconclusive (limit 2), 1 errored; next measurement at 2025-06-01T10:03:00Z; last: E#"},
		{"running with nothing due", canary.VerdictRunning, msg("S", ""), time.Time{},
			"1 of 3 measurements counted; 0 failed (limit 1), 0 inconclusive (limit 2), 0 errored; no further measurement is due; last: S"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Reason(tt.verdict, tt.ms, l, tt.next); got != tt.want {
				t.Errorf("Reason =\n  %q\nwant\n  %q", got, tt.want)
			}
		})
	}
}
