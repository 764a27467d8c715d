package webhook

import (
	"net/http"
	"time"
)

// The HTTP server limits NewServer sets. A connection that trickles its
// headers is cut after ServerReadHeaderTimeout, one that trickles its body
// after ServerReadTimeout from its first byte (the Handler's BodyTimeout
// may cut it sooner), and an idle keep-alive connection after
// ServerIdleTimeout.
const (
	ServerReadHeaderTimeout = 10 * time.Second
	ServerReadTimeout       = 30 * time.Second
	ServerWriteTimeout      = 30 * time.Second
	ServerIdleTimeout       = 60 * time.Second
	ServerMaxHeaderBytes    = 64 << 10
)

// NewServer returns an http.Server for h (the webhook Handler, or a mux
// holding it) with the recommended limits above. Serve the webhook port
// with it: a bare http.Server has no read or idle timeout, so a client
// sending one byte at a time holds its connection for as long as it likes.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ServerReadHeaderTimeout,
		ReadTimeout:       ServerReadTimeout,
		WriteTimeout:      ServerWriteTimeout,
		IdleTimeout:       ServerIdleTimeout,
		MaxHeaderBytes:    ServerMaxHeaderBytes,
	}
}
