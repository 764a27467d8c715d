package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/canarybot/canarybot/pkg/canary"
)

// Sender delivers one event to one channel.
type Sender interface {
	Send(ctx context.Context, e Event) error
}

// SecretReader reads a secret the plan names. The default reads the
// bot's environment and files.
type SecretReader interface {
	Read(src canary.SecretSource) (string, error)
}

// MaxSecretBytes bounds a secret file.
const MaxSecretBytes = 64 << 10

// DefaultSecretsDir is where notification secret files must be when
// EnvAndFiles.Dir is empty: mount the Secret there.
const DefaultSecretsDir = "/var/run/secrets/canarybot"

// EnvAndFiles reads secrets from environment variables and regular files,
// trimming surrounding white space (a trailing newline, say). It reads on
// every use, so a rotated Secret volume takes effect at the next send.
//
// A plan comes from the GitOps repository, which is untrusted input: it
// must not be able to point a webhook at the bot's own credentials (the
// App key, the Argo CD token). So only variables named
// canary.NotifyEnvPrefix+"…" and files under Dir are read.
type EnvAndFiles struct {
	// Dir holds the secret files; DefaultSecretsDir when empty.
	Dir string
}

// Read returns the secret; its errors name the source, never the value.
func (r EnvAndFiles) Read(src canary.SecretSource) (string, error) {
	var v string
	switch {
	case src.Env != "" && !strings.HasPrefix(src.Env, canary.NotifyEnvPrefix):
		return "", fmt.Errorf("read secret from %s: only variables named %s… are read", src, canary.NotifyEnvPrefix)
	case src.File != "" && !within(r.dir(), src.File):
		return "", fmt.Errorf("read secret from %s: only files under %s are read", src, r.dir())
	case src.Env != "":
		s, ok := os.LookupEnv(src.Env)
		if !ok {
			return "", fmt.Errorf("read secret from %s: the variable is not set", src)
		}
		v = s
	case src.File != "":
		b, err := readSecretFile(src.File)
		if err != nil {
			return "", fmt.Errorf("read secret from %s: %w", src, err)
		}
		v = string(b)
	default:
		return "", errors.New("read secret: no env or file given")
	}
	if v = strings.TrimSpace(v); v == "" {
		return "", fmt.Errorf("read secret from %s: it is empty", src)
	}
	return v, nil
}

func (r EnvAndFiles) dir() string {
	if r.Dir == "" {
		return DefaultSecretsDir
	}
	return filepath.Clean(r.Dir)
}

// within reports whether p is a path under dir, after cleaning.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, filepath.Clean(p))
	return err == nil && filepath.IsAbs(p) && rel != "." && !strings.HasPrefix(rel, "..")
}

// readSecretFile reads a regular file (a link to one, as Kubernetes
// Secret volumes have, is followed), at most MaxSecretBytes.
func readSecretFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSecretBytes {
		return nil, fmt.Errorf("over %d bytes", MaxSecretBytes)
	}
	return b, nil
}

// DefaultSendTimeout bounds one delivery.
const DefaultSendTimeout = 15 * time.Second

// NewHTTPClient is the client senders use by default: a timeout, and no
// redirects (a webhook that moves must be reconfigured, not followed).
func NewHTTPClient() *http.Client {
	return &http.Client{Timeout: DefaultSendTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// newSender resolves ch's secrets and returns its sender with the secrets,
// which the caller hides from every error.
func newSender(ch canary.NotificationChannel, secrets SecretReader, client *http.Client) (Sender, []string, error) {
	switch {
	case ch.Slack != nil && ch.Slack.WebhookURLFrom != nil:
		u, err := secrets.Read(*ch.Slack.WebhookURLFrom)
		if err != nil {
			return nil, nil, err
		}
		if err := checkSecretURL(u); err != nil {
			return nil, []string{u}, fmt.Errorf("the URL in %s: %w", ch.Slack.WebhookURLFrom, err)
		}
		return &slackSender{url: u, client: client}, []string{u}, nil
	case ch.Webhook != nil && ch.Webhook.SecretFrom != nil:
		w := ch.Webhook
		secret, err := secrets.Read(*w.SecretFrom)
		if err != nil {
			return nil, nil, err
		}
		hidden := []string{secret}
		u := w.URL
		if w.URLFrom != nil {
			if u, err = secrets.Read(*w.URLFrom); err != nil {
				return nil, hidden, err
			}
			hidden = append(hidden, u)
			if err := checkSecretURL(u); err != nil {
				return nil, hidden, fmt.Errorf("the URL in %s: %w", w.URLFrom, err)
			}
		} else if err := canary.CheckNotificationURL(u); err != nil {
			return nil, hidden, fmt.Errorf("url: %w", err)
		}
		return &webhookSender{url: u, secret: []byte(secret), client: client}, hidden, nil
	}
	return nil, nil, errors.New("neither a slack nor a webhook channel (the plan was not validated)")
}

// checkSecretURL checks a URL read from a secret: http(s) with a host,
// https unless to a loopback address. Its errors never quote the URL.
func checkSecretURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("not a valid URL")
	case u.Host == "":
		return errors.New("names no host")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return errors.New("not an https:// URL (plain http:// only to a loopback address)")
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// post sends req and accepts any 2xx answer. Its errors do not quote the
// URL: *url.Error is unwrapped to its cause.
func post(client *http.Client, req *http.Request) error {
	req.Header.Set("User-Agent", "canarybot-notify/1")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	return nil
}

// StatusError is a receiver's refusal.
type StatusError struct {
	Code int
	// Body is the start of the answer, for the log.
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("the receiver answered HTTP %d", e.Code)
	}
	return fmt.Sprintf("the receiver answered HTTP %d: %s", e.Code, e.Body)
}
