package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/canarybot/canarybot/pkg/artifact"
)

// EventsMediaType is the Content-Type of a Docker Distribution
// notification envelope.
const EventsMediaType = "application/vnd.docker.distribution.events.v1+json"

// MaxEvents bounds the events one envelope may carry. Distribution sends
// at most a few per request.
const MaxEvents = 1000

// ErrMalformed marks an envelope that is not valid JSON of the expected
// shape.
var ErrMalformed = errors.New("malformed notification envelope")

// Envelope is a Docker Distribution notification: a batch of events.
// Unknown fields are ignored, as Distribution may add some.
type Envelope struct {
	Events []Event `json:"events"`
}

// Event is one registry event. Only the fields canarybot reads are decoded.
type Event struct {
	ID        string  `json:"id"`
	Timestamp string  `json:"timestamp"`
	Action    string  `json:"action"`
	Target    Target  `json:"target"`
	Request   Request `json:"request"`
}

// Target is the object an event is about.
type Target struct {
	MediaType  string `json:"mediaType"`
	Digest     string `json:"digest"`
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	URL        string `json:"url"`
}

// Request describes the HTTP request that caused the event.
type Request struct {
	Host string `json:"host"`
}

// ParseEnvelope decodes an envelope. It fails with ErrMalformed on invalid
// JSON, trailing data, a missing or non-array "events", or more than
// MaxEvents events. It does not judge the events themselves; see
// ManifestPushes.
func ParseEnvelope(b []byte) (Envelope, error) {
	var raw struct {
		Events *[]Event `json:"events"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Envelope{}, fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	switch {
	case raw.Events == nil:
		return Envelope{}, fmt.Errorf("%w: no \"events\" array", ErrMalformed)
	case len(*raw.Events) > MaxEvents:
		return Envelope{}, fmt.Errorf("%w: %d events, over %d", ErrMalformed, len(*raw.Events), MaxEvents)
	}
	return Envelope{Events: *raw.Events}, nil
}

// ManifestPushes returns the events that pushed a manifest (or index) to
// a repository, with a well-formed repository path and digest. Pulls,
// deletes, blob pushes and events with odd fields are left out: they
// cannot bring a new model version.
func (e Envelope) ManifestPushes() []Event {
	var out []Event
	for _, ev := range e.Events {
		if ev.Action != "push" || !isManifest(ev.Target) {
			continue
		}
		ref, err := artifact.Parse("oci://registry.invalid/" + ev.Target.Repository + "@" + ev.Target.Digest)
		if err != nil || ref.Path != ev.Target.Repository || ref.Tag != "" || ref.Digest != ev.Target.Digest {
			continue
		}
		out = append(out, ev)
	}
	return out
}

// isManifest reports whether a target is a manifest or index rather than
// a blob. Distribution reports blobs with their layer or octet-stream
// media type and no tag.
func isManifest(t Target) bool {
	mt := strings.ToLower(t.MediaType)
	return t.Tag != "" || strings.Contains(mt, "manifest") || strings.Contains(mt, "image.index")
}

// RepositoryPath returns the path part of host/path, as Distribution
// reports it in target.repository: "ghcr.io/acme/qwen" → "acme/qwen".
// A first component that is not a host (no '.' or ':', not "localhost")
// is kept: "acme/qwen" → "acme/qwen".
func RepositoryPath(repo string) string {
	host, rest, ok := strings.Cut(repo, "/")
	if ok && (strings.ContainsAny(host, ".:") || host == "localhost") {
		return rest
	}
	return repo
}
