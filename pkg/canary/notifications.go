package canary

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/canarybot/canarybot/pkg/redact"
)

// Notification events: the values of a channel's `on`. Each is derived
// from a transition commit on the GitOps branch (see pkg/notify).
const (
	EventStarted          = "started"
	EventAdvanced         = "advanced"
	EventAwaitingApproval = "awaitingApproval"
	EventHeld             = "held"
	EventPromoted         = "promoted"
	EventReverted         = "reverted"
	EventPlanInvalid      = "planInvalid"
)

// NotificationEvents lists every event, in the order a rollout meets them.
var NotificationEvents = []string{EventStarted, EventAdvanced, EventAwaitingApproval, EventHeld,
	EventPromoted, EventReverted, EventPlanInvalid}

// MaxNotificationChannels bounds the channels of one list.
const MaxNotificationChannels = 20

// NotificationChannel is one destination of rollout notifications:
// exactly one of Slack and Webhook. Its name identifies it in the
// repository (its delivery cursor is refs/canarybot/notified/<name>).
type NotificationChannel struct {
	Name string `json:"name"`
	// On lists the events sent; every event when empty.
	On []string `json:"on,omitempty"`
	// OnYAML11 receives an unquoted `on:` key, which YAML 1.1 (as the
	// decoder reads it) takes for the boolean true. Decoding moves it to On.
	OnYAML11 []string             `json:"true,omitempty"`
	Slack    *SlackNotification   `json:"slack,omitempty"`
	Webhook  *WebhookNotification `json:"webhook,omitempty"`
}

// SlackNotification posts Block Kit messages to a Slack incoming webhook.
// The webhook URL is a secret: it is read from the bot's environment or
// filesystem, never from the plan.
type SlackNotification struct {
	WebhookURLFrom *SecretSource `json:"webhookURLFrom,omitempty"`
	// WebhookURL exists only to be refused with a useful message.
	WebhookURL string `json:"webhookURL,omitempty"`
}

// WebhookNotification posts a signed JSON document (kind Notification) to
// a URL; see docs/notifications.md.
type WebhookNotification struct {
	// URL is https:// (or http:// to a loopback address). It must carry
	// no credential; give such a URL with URLFrom.
	URL     string        `json:"url,omitempty"`
	URLFrom *SecretSource `json:"urlFrom,omitempty"`
	// SecretFrom is the HMAC-SHA256 key of the X-Canarybot-Signature header.
	SecretFrom *SecretSource `json:"secretFrom,omitempty"`
	// Secret exists only to be refused with a useful message.
	Secret string `json:"secret,omitempty"`
}

// NotifyEnvPrefix starts the name of every environment variable a plan may
// read a notification secret from.
const NotifyEnvPrefix = "CANARYBOT_NOTIFY_"

// SecretSource names where the bot reads a secret: exactly one of an
// environment variable and a file (a mounted Secret, say).
type SecretSource struct {
	Env  string `json:"env,omitempty"`
	File string `json:"file,omitempty"`
}

// String names the source without its value.
func (s SecretSource) String() string {
	if s.Env != "" {
		return "env " + s.Env
	}
	return "file " + s.File
}

// Wants reports whether the channel sends event.
func (c NotificationChannel) Wants(event string) bool {
	on := c.events()
	return len(on) == 0 || slices.Contains(on, event)
}

// events is On with what an unquoted `on:` key decoded into.
func (c NotificationChannel) events() []string {
	if len(c.OnYAML11) == 0 {
		return c.On
	}
	return slices.Concat(c.On, c.OnYAML11)
}

// normalizeNotifications moves each channel's OnYAML11 into On.
func normalizeNotifications(chans []NotificationChannel) {
	for i := range chans {
		chans[i].On, chans[i].OnYAML11 = chans[i].events(), nil
	}
}

// NotificationsFor returns the channels of a plan: its own list when it
// sets one (even an empty one, which turns notifications off), else the
// repository's defaults.
func NotificationsFor(plan *CanaryPlan, defaults []NotificationChannel) []NotificationChannel {
	if plan != nil && plan.Spec.Notifications != nil {
		return plan.Spec.Notifications
	}
	return defaults
}

// ReadRepositoryConfig reads and validates .canarybot/config.yaml in fsys;
// nil and no error when there is none.
func ReadRepositoryConfig(fsys fs.FS) (*RepositoryConfig, error) {
	cfg, err := readConfig(fsys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigPath, err)
	}
	return cfg, nil
}

// ValidateNotifications returns every problem of a channel list, each
// prefixed with field (e.g. "spec.notifications"). No message quotes a
// value that may be a secret.
func ValidateNotifications(field string, chans []NotificationChannel) error {
	var errs []error
	validateNotifications(field, chans, func(f, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", f, fmt.Sprintf(format, args...)))
	})
	return errors.Join(errs...)
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func validateNotifications(field string, chans []NotificationChannel, add addFunc) {
	if len(chans) > MaxNotificationChannels {
		add(field, "at most %d channels, got %d", MaxNotificationChannels, len(chans))
	}
	names := map[string]bool{}
	for i, c := range chans {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !validName(c.Name):
			add(f+".name", "must be a DNS label (lower-case letters, digits and '-', at most 63), got %q", c.Name)
		case names[c.Name]:
			add(f+".name", "duplicate channel %q", c.Name)
		}
		names[c.Name] = true
		validateOn(f+".on", c.events(), add)
		switch {
		case c.Slack == nil && c.Webhook == nil:
			add(f, "set exactly one of slack and webhook")
		case c.Slack != nil && c.Webhook != nil:
			add(f, "set exactly one of slack and webhook, not both")
		case c.Slack != nil:
			validateSlack(f+".slack", c.Slack, add)
		default:
			validateWebhook(f+".webhook", c.Webhook, add)
		}
	}
}

func validateOn(f string, on []string, add addFunc) {
	seen := map[string]bool{}
	for j, e := range on {
		switch {
		case !slices.Contains(NotificationEvents, e):
			add(fmt.Sprintf("%s[%d]", f, j), "unknown event %q (known: %s)", e, strings.Join(NotificationEvents, ", "))
		case seen[e]:
			add(fmt.Sprintf("%s[%d]", f, j), "duplicate event %q", e)
		}
		seen[e] = true
	}
}

func validateSlack(f string, s *SlackNotification, add addFunc) {
	if s.WebhookURL != "" {
		add(f+".webhookURL", "a Slack webhook URL is a secret and may not be written in Git: put it in an "+
			"environment variable or a file of the bot and name that with webhookURLFrom")
	}
	if s.WebhookURLFrom == nil {
		add(f+".webhookURLFrom", "is required")
		return
	}
	validateSecretSource(f+".webhookURLFrom", *s.WebhookURLFrom, add)
}

func validateWebhook(f string, w *WebhookNotification, add addFunc) {
	if w.Secret != "" {
		add(f+".secret", "a signing secret may not be written in Git: put it in an environment variable or a "+
			"file of the bot and name that with secretFrom")
	}
	switch {
	case w.URL == "" && w.URLFrom == nil:
		add(f+".url", "is required (or urlFrom)")
	case w.URL != "" && w.URLFrom != nil:
		add(f, "set either url or urlFrom, not both")
	case w.URLFrom != nil:
		validateSecretSource(f+".urlFrom", *w.URLFrom, add)
	default:
		if err := CheckNotificationURL(w.URL); err != nil {
			add(f+".url", "%v", err)
		}
	}
	if w.SecretFrom == nil {
		add(f+".secretFrom", "is required: every notification is signed")
	} else {
		validateSecretSource(f+".secretFrom", *w.SecretFrom, add)
	}
}

func validateSecretSource(f string, s SecretSource, add addFunc) {
	switch {
	case (s.Env == "") == (s.File == ""):
		add(f, "set exactly one of env and file")
	case s.Env != "" && (!envName.MatchString(s.Env) || !strings.HasPrefix(s.Env, NotifyEnvPrefix)):
		add(f+".env", "must be an environment variable named %s… (only those are read: a plan must not be able to "+
			"send the bot's own credentials), got %q", NotifyEnvPrefix, s.Env)
	case s.File != "" && (!strings.HasPrefix(s.File, "/") || path.Clean(s.File) != s.File):
		add(f+".file", "must be a clean absolute path on the bot's filesystem, got %q", s.File)
	}
}

// CheckNotificationURL checks a notification endpoint: http(s) with a
// host, https unless the host is a loopback address, and no credential
// (user information, a token-like query parameter, a Slack webhook path).
// Its messages never quote the credential.
func CheckNotificationURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("must be an https:// URL, got scheme %q", u.Scheme)
	case u.Host == "":
		return fmt.Errorf("must name a host")
	case redact.URL(raw) != raw:
		return fmt.Errorf("carries a credential (%s): put the URL in an environment variable or a file of the bot and name that with urlFrom", redact.URL(raw))
	case u.Scheme == "http" && !loopback(u.Hostname()):
		return fmt.Errorf("must be https:// (plain http:// only to a loopback address), got %s", redact.URL(raw))
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
