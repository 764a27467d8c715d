package fakegithub

import (
	"fmt"
	"net/http"
	"strings"
)

// docsURL is the documentation_url of the fake's error bodies.
const docsURL = "https://docs.github.com/rest"

// apiError is an error answer, rendered as GitHub's
// {"message", "errors", "documentation_url"} body.
type apiError struct {
	Status  int
	Message string
	// Errors are GitHub's detail entries: fieldError values or strings.
	Errors []any
	// DocURL overrides docsURL; go-github keys secondary rate limits on it.
	DocURL string
	Header http.Header
	// Cause is kept for Error() only; it never reaches the client.
	Cause error
}

// fieldError is one entry of a 422 "Validation Failed" body.
type fieldError struct {
	Resource string `json:"resource"`
	Field    string `json:"field,omitempty"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("%d %s", e.Status, e.Message)
	for _, d := range e.Errors {
		if fe, ok := d.(fieldError); ok {
			d = strings.TrimSpace(fmt.Sprintf("%s.%s %s %s", fe.Resource, fe.Field, fe.Code, fe.Message))
		}
		msg += fmt.Sprintf("; %v", d)
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

func (e *apiError) Unwrap() error { return e.Cause }

func (e *apiError) body() any {
	doc := e.DocURL
	if doc == "" {
		doc = docsURL
	}
	return struct {
		Message string `json:"message"`
		Errors  []any  `json:"errors,omitempty"`
		DocURL  string `json:"documentation_url"`
		Status  string `json:"status"`
	}{e.Message, e.Errors, doc, fmt.Sprint(e.Status)}
}

var errNotFound = &apiError{Status: http.StatusNotFound, Message: "Not Found"}

// unprocessable is a 422 with a plain message, as GitHub's git data API
// answers ("Reference already exists", "Update is not a fast forward").
func unprocessable(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusUnprocessableEntity, Message: fmt.Sprintf(format, args...)}
}

// invalid is a 422 "Validation Failed" naming the resource and field.
func invalid(resource, field, code, message string) *apiError {
	return &apiError{Status: http.StatusUnprocessableEntity, Message: "Validation Failed",
		Errors: []any{fieldError{Resource: resource, Field: field, Code: code, Message: message}}}
}

// forbidden is a 403 with message.
func forbidden(message string) *apiError {
	return &apiError{Status: http.StatusForbidden, Message: message}
}
