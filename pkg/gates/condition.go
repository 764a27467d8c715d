package gates

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/prometheus/common/model"

	"github.com/canarybot/canarybot/pkg/canary"
)

// env is what a condition sees: the measured value as `result`.
type env struct {
	Result float64 `expr:"result"`
}

// CompileCondition checks that s is a valid condition: an expr-lang
// expression over the float64 `result` that yields a bool, such as
// "result < 0.05". The empty string is valid and means "not set". Plan
// validation uses it to reject a bad condition before a rollout starts.
func CompileCondition(s string) error {
	_, err := compile(s)
	return err
}

func compile(s string) (*vm.Program, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	p, err := expr.Compile(s, expr.Env(env{}), expr.AsBool())
	if err != nil {
		return nil, fmt.Errorf("compile condition %q: %w", s, err)
	}
	return p, nil
}

// Conditions are a gate's compiled success and failure conditions.
type Conditions struct {
	// Success and Failure are the source texts; either may be empty.
	Success, Failure string

	success, failure *vm.Program
}

// CompileConditions compiles a success and a failure condition, at least
// one of which must be set. Compile once, then judge every measurement.
func CompileConditions(success, failure string) (*Conditions, error) {
	c := &Conditions{Success: success, Failure: failure}
	var errs []error
	var err error
	if c.success, err = compile(success); err != nil {
		errs = append(errs, fmt.Errorf("successCondition: %w", err))
	}
	if c.failure, err = compile(failure); err != nil {
		errs = append(errs, fmt.Errorf("failureCondition: %w", err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if c.success == nil && c.failure == nil {
		return nil, errors.New("no condition: set successCondition, failureCondition or both")
	}
	return c, nil
}

// String renders the conditions for a reviewer.
func (c *Conditions) String() string {
	var parts []string
	if c.success != nil {
		parts = append(parts, "successCondition: "+c.Success)
	}
	if c.failure != nil {
		parts = append(parts, "failureCondition: "+c.Failure)
	}
	return strings.Join(parts, "; ")
}

// Judge applies the conditions to one value, with Argo Rollouts'
// semantics:
//
//   - NaN or ±Inf (e.g. a ratio over no traffic): Inconclusive;
//   - failureCondition true: Failed;
//   - only successCondition set: Successful if true, else Failed;
//   - only failureCondition set: Successful if false;
//   - both set: Successful if success is true, Inconclusive if neither is;
//   - a condition that fails to run: Error.
//
// It returns the verdict and a message a reviewer can read.
func (c *Conditions) Judge(x float64) (canary.Verdict, string) {
	v := FormatValue(x)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return canary.VerdictInconclusive, fmt.Sprintf("result %s is not a finite number", v)
	}
	failed, err := run(c.failure, x)
	if err != nil {
		return canary.VerdictError, fmt.Sprintf("evaluate failureCondition %q: %s", c.Failure, firstLine(err))
	}
	if failed {
		return canary.VerdictFailed, fmt.Sprintf("result %s met failureCondition: %s", v, c.Failure)
	}
	if c.success == nil {
		return canary.VerdictSuccessful, fmt.Sprintf("result %s did not meet failureCondition: %s", v, c.Failure)
	}
	ok, err := run(c.success, x)
	switch {
	case err != nil:
		return canary.VerdictError, fmt.Sprintf("evaluate successCondition %q: %s", c.Success, firstLine(err))
	case ok:
		return canary.VerdictSuccessful, fmt.Sprintf("result %s met successCondition: %s", v, c.Success)
	case c.failure != nil:
		return canary.VerdictInconclusive, fmt.Sprintf("result %s met neither successCondition: %s nor failureCondition: %s", v, c.Success, c.Failure)
	default:
		return canary.VerdictFailed, fmt.Sprintf("result %s did not meet successCondition: %s", v, c.Success)
	}
}

// Measure turns one instant query result into a measurement taken at at.
// No data is Inconclusive; a result that is not a single value (several
// series, a range vector, a string) is Error.
func (c *Conditions) Measure(at time.Time, v model.Value) canary.Measurement {
	m := canary.Measurement{At: at}
	x, ok, err := Single(v)
	switch {
	case err != nil:
		m.Verdict, m.Message = canary.VerdictError, err.Error()
	case !ok:
		m.Verdict, m.Message = canary.VerdictInconclusive, "query returned no data"
	default:
		m.Value = FormatValue(x)
		m.Verdict, m.Message = c.Judge(x)
	}
	return m
}

func run(p *vm.Program, x float64) (bool, error) {
	if p == nil {
		return false, nil
	}
	out, err := expr.Run(p, env{Result: x})
	if err != nil {
		return false, fmt.Errorf("run: %w", err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("condition yielded %T, want bool", out)
	}
	return b, nil
}

// Single extracts the one value of an instant query result. ok is false
// when the result holds no sample. A vector of several series, a range
// vector or a string is an error: aggregate the query to one series.
func Single(v model.Value) (x float64, ok bool, err error) {
	switch r := v.(type) {
	case nil:
		return 0, false, nil
	case *model.Scalar:
		return float64(r.Value), true, nil
	case model.Vector:
		switch len(r) {
		case 0:
			return 0, false, nil
		case 1:
			return float64(r[0].Value), true, nil
		}
		return 0, false, fmt.Errorf("query returned %d series (%s), want one: aggregate it, e.g. with sum(...)", len(r), seriesList(r))
	case model.Matrix:
		return 0, false, fmt.Errorf("query returned a range vector of %d series, want a scalar or an instant vector", len(r))
	default:
		return 0, false, fmt.Errorf("query returned a %s, want a scalar or an instant vector", v.Type())
	}
}

// firstLine drops the source excerpt expr-lang appends to its errors.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func seriesList(vec model.Vector) string {
	const show = 3
	var names []string
	for i, s := range vec {
		if i == show {
			names = append(names, fmt.Sprintf("and %d more", len(vec)-show))
			break
		}
		names = append(names, s.Metric.String())
	}
	return strings.Join(names, ", ")
}

// FormatValue renders a measured value for humans, with six significant
// digits: 1.41421, 0.05, 12345.7, NaN, +Inf.
func FormatValue(x float64) string {
	return strconv.FormatFloat(x, 'g', 6, 64)
}
