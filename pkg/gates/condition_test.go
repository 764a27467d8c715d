package gates

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestCompileCondition(t *testing.T) {
	tests := []struct {
		cond    string
		wantErr string // substring; "" means valid
	}{
		{"", ""},
		{"   ", ""},
		{"result < 0.05", ""},
		{"result >= 0.9 && result <= 1", ""},
		{"result in [1, 2]", ""},
		{"result <", "unexpected token EOF"},
		{"result + 1", "expected bool"},
		{"resutl > 1", "unknown name resutl"},
		{"result > 'a'", "mismatched types"},
	}
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			err := CompileCondition(tt.cond)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CompileCondition(%q) = %v, want nil", tt.cond, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "compile condition") {
				t.Fatalf("CompileCondition(%q) = %v, want an error containing %q", tt.cond, err, tt.wantErr)
			}
		})
	}
}

func TestCompileConditionsErrors(t *testing.T) {
	tests := []struct {
		name, success, failure string
		want                   []string
	}{
		{"none set", "", "", []string{"no condition"}},
		{"bad success", "result <", "result > 1", []string{"successCondition: compile condition"}},
		{"both bad", "result <", "nope > 1", []string{"successCondition:", "failureCondition:", "unknown name nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CompileConditions(tt.success, tt.failure)
			if err == nil {
				t.Fatalf("CompileConditions = %v, want an error", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name, success, failure string
		x                      float64
		want                   canary.Verdict
		wantMsg                string
	}{
		{"success only, met", "result < 1", "", 0.5, canary.VerdictSuccessful, "result 0.5 met successCondition: result < 1"},
		{"success only, not met", "result < 1", "", 1.41421356, canary.VerdictFailed, "result 1.41421 did not meet successCondition: result < 1"},
		{"failure only, met", "", "result >= 1.2", 1.41, canary.VerdictFailed, "result 1.41 met failureCondition: result >= 1.2"},
		{"failure only, not met", "", "result >= 1.2", 0.9, canary.VerdictSuccessful, "result 0.9 did not meet failureCondition: result >= 1.2"},
		{"both, failure met", "result < 1", "result > 2", 3, canary.VerdictFailed, "met failureCondition"},
		{"both met: failure wins", "result > 0", "result > 2", 3, canary.VerdictFailed, "met failureCondition"},
		{"both, success met", "result < 1", "result > 2", 0.5, canary.VerdictSuccessful, "met successCondition"},
		{"both, neither met", "result < 1", "result > 2", 1.5, canary.VerdictInconclusive, "met neither"},
		{"NaN", "result < 1", "", math.NaN(), canary.VerdictInconclusive, "result NaN is not a finite number"},
		{"+Inf", "", "result > 1", math.Inf(1), canary.VerdictInconclusive, "result +Inf is not a finite number"},
		{"-Inf", "result > 1", "", math.Inf(-1), canary.VerdictInconclusive, "not a finite number"},
		{"runtime error", "int(result) % 0 == 1", "", 2, canary.VerdictError, "evaluate successCondition"},
		{"runtime error in failure", "", "int(result) % 0 == 1", 2, canary.VerdictError, "integer divide by zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CompileConditions(tt.success, tt.failure)
			if err != nil {
				t.Fatal(err)
			}
			got, msg := c.Judge(tt.x)
			if got != tt.want || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("Judge(%v) = %s %q, want %s containing %q", tt.x, got, msg, tt.want, tt.wantMsg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("message %q spans several lines", msg)
			}
		})
	}
}

func TestMeasure(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	sample := func(v float64, labels ...string) *model.Sample {
		m := model.Metric{}
		for i := 0; i+1 < len(labels); i += 2 {
			m[model.LabelName(labels[i])] = model.LabelValue(labels[i+1])
		}
		return &model.Sample{Metric: m, Value: model.SampleValue(v), Timestamp: model.TimeFromUnix(at.Unix())}
	}
	tests := []struct {
		name      string
		v         model.Value
		want      canary.Verdict
		wantValue string
		wantMsg   string
	}{
		{"scalar", &model.Scalar{Value: 0.02}, canary.VerdictSuccessful, "0.02", "met successCondition"},
		{"vector of one", model.Vector{sample(0.07, "job", "x")}, canary.VerdictFailed, "0.07", "did not meet successCondition"},
		{"empty vector is no data", model.Vector{}, canary.VerdictInconclusive, "", "query returned no data"},
		{"nil is no data", nil, canary.VerdictInconclusive, "", "query returned no data"},
		{"NaN sample", model.Vector{sample(math.NaN())}, canary.VerdictInconclusive, "NaN", "not a finite number"},
		{"several series", model.Vector{sample(1, "pod", "a"), sample(2, "pod", "b")}, canary.VerdictError, "",
			`query returned 2 series ({pod="a"}, {pod="b"}), want one: aggregate it, e.g. with sum(...)`},
		{"many series are abbreviated", model.Vector{sample(1, "p", "a"), sample(2, "p", "b"), sample(3, "p", "c"), sample(4, "p", "d"), sample(5, "p", "e")},
			canary.VerdictError, "", "and 2 more"},
		{"range vector", model.Matrix{&model.SampleStream{Metric: model.Metric{}}}, canary.VerdictError, "", "range vector"},
		{"string", &model.String{Value: "x"}, canary.VerdictError, "", "query returned a string"},
	}
	c, err := CompileConditions("result < 0.05", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := c.Measure(at, tt.v)
			if !m.At.Equal(at) || m.Verdict != tt.want || m.Value != tt.wantValue || !strings.Contains(m.Message, tt.wantMsg) {
				t.Errorf("Measure = %+v, want verdict %s value %q message containing %q", m, tt.want, tt.wantValue, tt.wantMsg)
			}
		})
	}
}

func TestConditionsString(t *testing.T) {
	tests := []struct{ success, failure, want string }{
		{"result < 1", "", "successCondition: result < 1"},
		{"", "result > 2", "failureCondition: result > 2"},
		{"result < 1", "result > 2", "successCondition: result < 1; failureCondition: result > 2"},
	}
	for _, tt := range tests {
		c, err := CompileConditions(tt.success, tt.failure)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		x    float64
		want string
	}{
		{0, "0"}, {0.05, "0.05"}, {1.41421356, "1.41421"}, {12345.678, "12345.7"},
		{1e9, "1e+09"}, {math.NaN(), "NaN"}, {math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"},
	}
	for _, tt := range tests {
		if got := FormatValue(tt.x); got != tt.want {
			t.Errorf("FormatValue(%v) = %q, want %q", tt.x, got, tt.want)
		}
	}
}
