package modelsim

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// httpServer serves a handler on a loopback listener.
type httpServer struct {
	mu   sync.Mutex
	srv  *http.Server
	base string
}

// start listens on addr ("" means 127.0.0.1:0) and serves h in the
// background until ctx is done or close is called.
func (s *httpServer) start(ctx context.Context, addr string, h http.Handler) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("already started")
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.srv, s.base = srv, "http://"+ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	return nil
}

// url is the base URL once started, or "".
func (s *httpServer) url() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base
}

// close stops serving; closing a server never started is a no-op.
func (s *httpServer) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}
