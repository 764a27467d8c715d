package promserver

import (
	"bytes"
	"log/slog"
	"sync"
)

// maxTail bounds the output kept for error messages.
const maxTail = 4 << 10

// logTail is an io.Writer that keeps the last maxTail bytes written and
// logs each complete line at Debug.
type logTail struct {
	logger *slog.Logger

	mu      sync.Mutex
	tail    []byte
	partial []byte
}

func newLogTail(logger *slog.Logger) *logTail {
	return &logTail{logger: logger}
}

// Write records p. It never fails.
func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tail = append(l.tail, p...)
	if over := len(l.tail) - maxTail; over > 0 {
		l.tail = append(l.tail[:0], l.tail[over:]...)
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.logger.Debug("prometheus output", "line", string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) > maxTail { // an endless line: log what we have
		l.logger.Debug("prometheus output", "line", string(l.partial))
		l.partial = l.partial[:0]
	}
	return len(p), nil
}

// Tail returns the last output, labeled for an error message.
func (l *logTail) Tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tail) == 0 {
		return "prometheus output: (none)"
	}
	return "prometheus output (tail):\n" + string(bytes.TrimRight(l.tail, "\n"))
}
