// Package notify turns "something may have changed in a registry" into a
// wake of canary.Engine: a coalescing Waker, a Poller with jitter and
// backoff, and an http.Handler for Docker Distribution notifications.
//
// A wake carries no artifact. The engine answers it by asking its
// ArtifactSource again, which resolves and pins what the registry holds,
// so a forged or replayed notification can at worst cause an extra look.
// Webhook receivers for other senders (GitHub's registry_package events,
// MLflow) only need to call Waker.Wake.
package notify

// Waker is a wake signal for canary.Engine.Wake. Wakes coalesce: any
// number of Wake calls before the engine looks yield one wake-up, and Wake
// never blocks. The zero value is not usable; call NewWaker.
type Waker struct {
	ch chan struct{}
}

// NewWaker returns a Waker with nothing pending.
func NewWaker() *Waker {
	return &Waker{ch: make(chan struct{}, 1)}
}

// Wake signals the engine. It never blocks.
func (w *Waker) Wake() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// C is the channel to set as canary.Engine.Wake.
func (w *Waker) C() <-chan struct{} { return w.ch }
