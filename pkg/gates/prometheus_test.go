package gates

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A Prometheus address may carry basic auth or a token; Go's HTTP client
// quotes the URL it dialled in its errors, hiding a password but neither
// a user-only token nor a token parameter. No error may show them.
func TestPrometheusErrorsHideCredentials(t *testing.T) {
	for name, addr := range map[string]string{
		"user only":   "http://SECRET@127.0.0.1:1",
		"basic auth":  "http://u:SECRET@127.0.0.1:1/prom",
		"query token": "http://127.0.0.1:1/?access_token=SECRET",
		"bad port":    "http://u:SECRET@127.0.0.1:port",
		"bad scheme":  "ftp://u:SECRET@127.0.0.1",
	} {
		t.Run(name, func(t *testing.T) {
			q, err := NewPrometheusAPI(addr, nil)
			if err == nil {
				_, _, _, err = q.Query(context.Background(), "up", time.Now())
			}
			if err == nil || strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("err = %v, want an error without the credential", err)
			}
			if q != nil && !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("err = %v, want it to still wrap ECONNREFUSED", err)
			}
		})
	}
}

// Basic auth in the address still reaches Prometheus.
func TestPrometheusBasicAuthFromAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}))
	defer srv.Close()
	q, err := NewPrometheusAPI(strings.Replace(srv.URL, "http://", "http://u:s3cret@", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := q.Query(context.Background(), "up", time.Now()); err != nil {
		t.Errorf("query with basic auth from the address: %v", err)
	}
}
