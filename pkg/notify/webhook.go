package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// The generic webhook's document and headers. docs/notifications.md
// documents them; a change to Payload that is not an addition needs a new
// PayloadAPIVersion.
const (
	PayloadAPIVersion = "canarybot.dev/v1alpha1"
	PayloadKind       = "Notification"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body,
	// keyed with the channel's secret.
	HeaderSignature = "X-Canarybot-Signature"
	// HeaderDelivery is the event id: the same on every retry.
	HeaderDelivery = "X-Canarybot-Delivery"
	// HeaderEvent is the event type.
	HeaderEvent = "X-Canarybot-Event"
)

// Payload is the JSON body of a generic webhook notification.
type Payload struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// ID is the event id; a receiver drops a repeat by it.
	ID         string `json:"id"`
	Event      string `json:"event"`
	Plan       string `json:"plan"`
	Repository string `json:"repository"`
	Commit     string `json:"commit"`
	CommitURL  string `json:"commitURL,omitempty"`
	At         string `json:"at"`
	Step       int    `json:"step"`
	Weight     int    `json:"weight"`
	// Stable and Candidate are absent when not known (planInvalid).
	Stable       *ArtifactPayload `json:"stable,omitempty"`
	Candidate    *ArtifactPayload `json:"candidate,omitempty"`
	Reason       string           `json:"reason,omitempty"`
	DecidingGate string           `json:"decidingGate,omitempty"`
	// Gates is always a list, empty when no gate was assessed.
	Gates []GatePayload `json:"gates"`
	// Path and Errors describe a planInvalid event.
	Path   string   `json:"path,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// ArtifactPayload is a pinned artifact.
type ArtifactPayload struct {
	URI     string `json:"uri"`
	Version string `json:"version,omitempty"`
	// Digest is the short form people read (see ShortDigest).
	Digest string `json:"digest,omitempty"`
}

// GatePayload is one gate's last result, as the state file recorded it.
type GatePayload struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	// Value is the observed value; Condition the bounds it is held to.
	Value        string `json:"value,omitempty"`
	Condition    string `json:"condition,omitempty"`
	Query        string `json:"query,omitempty"`
	Window       string `json:"window,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Successful   int    `json:"successful"`
	Failed       int    `json:"failed"`
	Inconclusive int    `json:"inconclusive"`
	Errors       int    `json:"errors"`
}

// NewPayload renders e as the webhook's document.
func NewPayload(e Event) Payload {
	p := Payload{APIVersion: PayloadAPIVersion, Kind: PayloadKind, ID: e.ID, Event: e.Type, Plan: e.Plan,
		Repository: e.Repository, Commit: e.Commit, CommitURL: e.CommitURL, At: e.At.UTC().Format(time.RFC3339),
		Step: e.Step, Weight: e.Weight, Stable: artifactPayload(e.Stable), Candidate: artifactPayload(e.Candidate),
		Reason: e.Reason, DecidingGate: e.DecidingGate, Gates: []GatePayload{}, Path: e.Path, Errors: e.Errors}
	for _, g := range e.Gates {
		p.Gates = append(p.Gates, GatePayload{Name: g.Gate, Verdict: string(g.Verdict), Value: g.Value,
			Condition: g.Condition, Query: g.Query, Window: g.Window, Reason: g.Reason, Successful: g.Successful,
			Failed: g.Failed, Inconclusive: g.Inconclusive, Errors: g.Errors})
	}
	return p
}

func artifactPayload(a canary.Artifact) *ArtifactPayload {
	if a.URI == "" {
		return nil
	}
	return &ArtifactPayload{URI: a.URI, Version: a.Version, Digest: ShortDigest(a)}
}

// Sign returns the X-Canarybot-Signature value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature is body's signature under secret, in
// constant time; for receivers written in Go.
func Verify(secret, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(signature))
}

// encode renders v as JSON as it is sent: '<', '>' and '&' unescaped,
// one line with a final newline. The signature covers exactly these bytes.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// webhookSender posts signed Payloads.
type webhookSender struct {
	url    string
	secret []byte
	client *http.Client
}

func (s *webhookSender) Send(ctx context.Context, e Event) error {
	body, err := encode(NewPayload(e))
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderSignature, Sign(s.secret, body))
	req.Header.Set(HeaderDelivery, e.ID)
	req.Header.Set(HeaderEvent, e.Type)
	return post(s.client, req)
}
