// Package mlflowtest is a stateful fake of MLflow's Model Registry REST
// API (the endpoints canarybot calls) and of its webhook deliveries, for
// tests and demos. It answers as MLflow 2.x/3.x does: the same paths and
// JSON field names, RESOURCE_DOES_NOT_EXIST with 404 and
// INVALID_PARAMETER_VALUE with 400, search filters such as name='x', and
// paged searches; it signs webhooks as MLflow does (see mlflow.Sign).
package mlflowtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/canarybot/canarybot/pkg/registry/mlflow"
)

// Server is the fake. Its zero value is not usable; call NewServer. All
// methods are safe for concurrent use.
type Server struct {
	// Token, when set, is required as "Authorization: Bearer <Token>".
	Token string
	// Now stamps webhook deliveries; time.Now when nil.
	Now func() time.Time
	// Client delivers webhooks; http.DefaultClient when nil.
	Client *http.Client

	mu         sync.Mutex
	models     map[string]*model
	hooks      []hook
	deliveries []Delivery
	nextID     int
}

type model struct {
	versions []*version
	aliases  map[string]string
}

type version struct {
	mlflow.ModelVersion
	downloadURI string
}

type hook struct {
	url    string
	secret []byte
	events map[string]bool
}

// Delivery is the outcome of one webhook delivery.
type Delivery struct {
	Event  string
	ID     string
	Status int
	Err    error
}

// NewServer returns an empty registry.
func NewServer() *Server {
	return &Server{models: map[string]*model{}}
}

// CreateModelVersion registers a new READY version of name (creating the
// model when needed) stored at downloadURI, and returns its number.
func (s *Server) CreateModelVersion(name, source, downloadURI string, tags map[string]string) string {
	s.mu.Lock()
	m := s.models[name]
	if m == nil {
		m = &model{aliases: map[string]string{}}
		s.models[name] = m
	}
	v := &version{downloadURI: downloadURI, ModelVersion: mlflow.ModelVersion{
		Name: name, Version: strconv.Itoa(len(m.versions) + 1), Source: source,
		Status: mlflow.StatusReady, CurrentStage: "None",
	}}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Tags = append(v.Tags, mlflow.Tag{Key: k, Value: tags[k]})
	}
	m.versions = append(m.versions, v)
	s.mu.Unlock()
	s.deliver("model_version", "created", mlflow.EventData{Name: name, Version: v.Version, Source: source, Tags: tags})
	return v.Version
}

// SetStatus sets a version's status, e.g. PENDING_REGISTRATION.
func (s *Server) SetStatus(name, ver, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.version(name, ver)
	if err != nil {
		return err
	}
	v.Status = status
	return nil
}

// SetTag sets a tag on a version.
func (s *Server) SetTag(name, ver, key, value string) error {
	s.mu.Lock()
	v, err := s.version(name, ver)
	if err == nil {
		replaced := false
		for i := range v.Tags {
			if v.Tags[i].Key == key {
				v.Tags[i].Value, replaced = value, true
			}
		}
		if !replaced {
			v.Tags = append(v.Tags, mlflow.Tag{Key: key, Value: value})
		}
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.deliver("model_version_tag", "set", mlflow.EventData{Name: name, Version: ver, Key: key, Value: value})
	return nil
}

// SetAlias points alias at a version, moving it if it was elsewhere.
func (s *Server) SetAlias(name, alias, ver string) error {
	s.mu.Lock()
	_, err := s.version(name, ver)
	if err == nil {
		m := s.models[name]
		for _, v := range m.versions {
			v.Aliases = remove(v.Aliases, alias)
		}
		m.aliases[alias] = ver
		v, _ := s.version(name, ver)
		v.Aliases = append(v.Aliases, alias)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.deliver("model_version_alias", "created", mlflow.EventData{Name: name, Alias: alias, Version: ver})
	return nil
}

// DeleteAlias removes an alias.
func (s *Server) DeleteAlias(name, alias string) error {
	s.mu.Lock()
	m := s.models[name]
	var err error
	if m == nil || m.aliases[alias] == "" {
		err = fmt.Errorf("no alias %s of %s", alias, name)
	} else {
		v, _ := s.version(name, m.aliases[alias])
		v.Aliases = remove(v.Aliases, alias)
		delete(m.aliases, alias)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.deliver("model_version_alias", "deleted", mlflow.EventData{Name: name, Alias: alias})
	return nil
}

// AddWebhook subscribes url to events ("model_version.created", …),
// signed with secret.
func (s *Server) AddWebhook(url string, secret []byte, events ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := hook{url: url, secret: secret, events: map[string]bool{}}
	for _, e := range events {
		h.events[e] = true
	}
	s.hooks = append(s.hooks, h)
}

// Deliveries returns every webhook delivery so far, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

// deliver posts an event to each subscribed webhook, synchronously, as
// MLflow's delivery does: the payload {entity, action, timestamp, data},
// headers X-MLflow-Delivery-Id and X-MLflow-Timestamp, and, with a
// secret, X-MLflow-Signature.
func (s *Server) deliver(entity, action string, data mlflow.EventData) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	client := http.DefaultClient
	if s.Client != nil {
		client = s.Client
	}
	s.mu.Lock()
	hooks := append([]hook(nil), s.hooks...)
	s.mu.Unlock()
	event := entity + "." + action
	for _, h := range hooks {
		if !h.events[event] {
			continue
		}
		at := now()
		body, _ := json.Marshal(mlflow.Event{Entity: entity, Action: action, Timestamp: at.UTC().Format(time.RFC3339Nano), Data: data})
		s.mu.Lock()
		s.nextID++
		id := fmt.Sprintf("delivery-%d", s.nextID)
		s.mu.Unlock()
		d := Delivery{Event: event, ID: id}
		req, err := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(body))
		if err == nil {
			ts := strconv.FormatInt(at.Unix(), 10)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(mlflow.HeaderDeliveryID, id)
			req.Header.Set(mlflow.HeaderTimestamp, ts)
			if len(h.secret) > 0 {
				req.Header.Set(mlflow.HeaderSignature, mlflow.Sign(h.secret, id, ts, body))
			}
			var resp *http.Response
			if resp, err = client.Do(req); err == nil {
				d.Status = resp.StatusCode
				resp.Body.Close()
			}
		}
		d.Err = err
		s.mu.Lock()
		s.deliveries = append(s.deliveries, d)
		s.mu.Unlock()
	}
}

// version finds a version; call with mu held.
func (s *Server) version(name, ver string) (*version, error) {
	m := s.models[name]
	if m == nil {
		return nil, fmt.Errorf("Registered Model with name=%s not found", name)
	}
	for _, v := range m.versions {
		if v.Version == ver {
			return v, nil
		}
	}
	return nil, fmt.Errorf("Model Version (name=%s, version=%s) not found", name, ver)
}

func remove(list []string, x string) []string {
	out := list[:0]
	for _, s := range list {
		if s != x {
			out = append(out, s)
		}
	}
	return out
}
