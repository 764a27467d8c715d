package notify

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
)

// DefaultMaxBytes bounds a notification body unless the handler sets its
// own limit. Distribution batches few events; 1 MiB is generous.
const DefaultMaxBytes = 1 << 20

// DistributionHandler receives Docker Distribution (registry 2.x, 3.x,
// Harbor and others that speak its notification format) webhooks and
// wakes the engine when a manifest is pushed to a watched repository.
//
// Configure the registry with a notifications.endpoints entry whose url is
// this handler and, when Token is set, with
// headers: {Authorization: [Bearer <token>]}.
//
// It answers 405 to anything but POST, 401 to a missing or wrong token,
// 415 to another Content-Type, 413 to a body over MaxBytes, 400 to a
// malformed envelope, and 200 with {"events":N,"matched":M} otherwise.
// Events it has no use for (pulls, blobs, other repositories) are
// accepted and ignored, so that the registry does not resend them.
type DistributionHandler struct {
	// Repositories are the watched repositories, host/path as plans name
	// them, or just the path. They match target.repository by path: the
	// host a registry reports for itself depends on how it was reached.
	Repositories []string
	// Wake is called at most once per request, when an event matched.
	Wake func()
	// WakeRepository, when set, replaces Repositories and Wake: it is
	// called once per pushed repository path of a request, wakes whoever
	// watches it, and reports whether anyone does.
	WakeRepository func(path string) bool
	// Token, when set, must arrive as "Authorization: Bearer <Token>".
	Token string
	// MaxBytes bounds the body; DefaultMaxBytes when zero.
	MaxBytes int64
	Log      *slog.Logger
}

// ServeHTTP implements http.Handler.
func (h *DistributionHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		WriteError(w, http.StatusMethodNotAllowed, "want POST, got %s", r.Method)
		return
	}
	if h.Token != "" && !bearerMatches(r.Header.Get("Authorization"), h.Token) {
		WriteError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	if err := CheckContentType(r.Header.Get("Content-Type"), EventsMediaType, "application/json"); err != nil {
		WriteError(w, http.StatusUnsupportedMediaType, "%s", err)
		return
	}
	body, status, err := ReadBody(w, r, h.MaxBytes)
	if err != nil {
		WriteError(w, status, "%s", err)
		return
	}
	env, err := ParseEnvelope(body)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%s", err)
		return
	}
	matched := 0
	woken := map[string]bool{}
	for _, ev := range env.ManifestPushes() {
		repo := ev.Target.Repository
		watched, seen := woken[repo]
		if !seen {
			watched = h.watches(repo)
			woken[repo] = watched
		}
		if watched {
			matched++
			log.Info("registry push", "repository", repo, "tag", ev.Target.Tag, "digest", ev.Target.Digest)
		}
	}
	if matched > 0 && h.Wake != nil && h.WakeRepository == nil {
		h.Wake()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int{"events": len(env.Events), "matched": matched})
}

// watches reports whether repo (a path, as events carry it) is watched;
// with WakeRepository, it wakes its watchers too.
func (h *DistributionHandler) watches(repo string) bool {
	if h.WakeRepository != nil {
		return h.WakeRepository(repo)
	}
	for _, r := range h.Repositories {
		if RepositoryPath(r) == repo {
			return true
		}
	}
	return false
}

// bearerMatches compares "Bearer <token>" in constant time.
func bearerMatches(header, token string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// checkContentType accepts a Content-Type whose media type (parameters
// aside) is one of want.
func CheckContentType(header string, want ...string) error {
	mt, _, err := mime.ParseMediaType(header)
	if err == nil {
		for _, w := range want {
			if strings.EqualFold(mt, w) {
				return nil
			}
		}
	}
	return fmt.Errorf("content type %q: want %s", header, strings.Join(want, " or "))
}

// readBody reads at most limit bytes (DefaultMaxBytes when zero) and
// returns the status to answer with on failure.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, int, error) {
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body is over %d bytes", limit)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	return b, 0, nil
}

// httpError answers with a status and a one-line JSON message.
func WriteError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
}
