package gitops

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync/atomic"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestHTTPTransactWithToken(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	url, refused := rm.serveHTTP(t, "s3cret")

	// The server really demands the token.
	resp, err := http.Get(url + "/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous info/refs: %s", resp.Status)
	}
	refused.Store(0)

	o := testOptions(t, url)
	o.Token = "s3cret"
	r := openRepo(t, o)
	res, err := r.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
		return weightChange(10), nil
	})
	if err != nil {
		t.Fatalf("Transact over http: %v", err)
	}
	if res.SHA != rm.head(t) || res.Attempts != 1 {
		t.Errorf("result %+v, remote head %s", res, rm.head(t))
	}
	if got := rm.show(t, "main", canary.StatePath("llama")); got != "weight: 10" {
		t.Errorf("state over http = %q", got)
	}

	mem, err := OpenReadOnly(ctx, Options{URL: url, Token: "s3cret"})
	if err != nil {
		t.Fatalf("OpenReadOnly over http: %v", err)
	}
	if b, err := mem.ReadFile(ctx, "", "apps/llama/overlay/weights.yaml"); err != nil || string(b) != "weight: 10\n" {
		t.Errorf("memory ReadFile = %q, %v", b, err)
	}
	if n := refused.Load(); n != 0 {
		t.Errorf("%d requests refused with the token set", n)
	}
}

func TestHTTPWithoutTokenFails(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	url, refused := rm.serveHTTP(t, "s3cret")

	for name, token := range map[string]string{"no token": "", "wrong token": "guess"} {
		o := testOptions(t, url)
		o.Token = token
		_, err := Open(ctx, o)
		if !errors.Is(err, transport.ErrAuthenticationRequired) {
			t.Errorf("%s: Open err = %v, want ErrAuthenticationRequired", name, err)
		}
		if entries, _ := os.ReadDir(o.Dir); len(entries) != 0 {
			t.Errorf("%s: failed clone left %d entries in Dir", name, len(entries))
		}
		// The same Dir works once the token is right.
		o.Token = "s3cret"
		if _, err := Open(ctx, o); err != nil {
			t.Errorf("%s: Open with the token after a failure: %v", name, err)
		}
		if _, err := OpenReadOnly(ctx, Options{URL: url, Token: token}); !errors.Is(err, transport.ErrAuthenticationRequired) {
			t.Errorf("%s: OpenReadOnly err = %v", name, err)
		}
	}
	if refused.Load() < 4 {
		t.Errorf("server refused only %d requests", refused.Load())
	}
}

func TestHTTPPushAuthFailureIsReturnedNotRetried(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	seed := rm.head(t)
	url, _ := rm.serveHTTP(t, "s3cret")
	var calls atomic.Int32
	o := testOptions(t, url)
	// Good for the clone, then expired for the push (Transact builds on
	// the head as last fetched and fetches only after a refused push).
	o.TokenSource = func(context.Context) (string, error) {
		if calls.Add(1) <= 1 {
			return "s3cret", nil
		}
		return "expired", nil
	}
	r := openRepo(t, o)
	fnCalls := 0
	res, err := r.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
		fnCalls++
		return weightChange(10), nil
	})
	if !errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, ErrNonFastForward) {
		t.Fatalf("err = %v, want an auth error and no non-fast-forward", err)
	}
	if res.Attempts != 1 || fnCalls != 1 || calls.Load() != 2 {
		t.Errorf("attempts %d, fn calls %d, token calls %d", res.Attempts, fnCalls, calls.Load())
	}
	if h := rm.head(t); h != seed {
		t.Errorf("remote moved to %s", h)
	}

	tokenErr := errors.New("token service down")
	o2 := testOptions(t, rm.url)
	o2.URL = url
	o2.TokenSource = func(context.Context) (string, error) { return "", tokenErr }
	if _, err := Open(ctx, o2); !errors.Is(err, tokenErr) {
		t.Errorf("token source error not wrapped: %v", err)
	}
}
