package canary

import (
	"strings"
	"testing"
	"testing/fstest"
)

// withNotifications is goodPlan with a spec.notifications block.
func withNotifications(block string) string {
	return goodPlan + "  notifications:\n" + block
}

func TestPlanNotificationsAccepted(t *testing.T) {
	p, err := ParsePlan([]byte(withNotifications(`  - name: team-slack
    on: [reverted, awaitingApproval]
    slack:
      webhookURLFrom: {env: CANARYBOT_NOTIFY_SLACK_WEBHOOK_URL}
  - name: pager
    webhook:
      url: https://hooks.example.com/canarybot?team=ml
      secretFrom: {file: /var/run/secrets/canarybot/webhook}
  - name: local
    webhook:
      urlFrom: {file: /etc/canarybot/url}
      secretFrom: {env: CANARYBOT_NOTIFY_HOOK_SECRET}
  - name: sidecar
    webhook:
      url: http://127.0.0.1:8081/notify
      secretFrom: {env: CANARYBOT_NOTIFY_HOOK_SECRET}
`)))
	if err != nil {
		t.Fatal(err)
	}
	chans := p.Spec.Notifications
	if len(chans) != 4 || chans[0].Slack.WebhookURLFrom.Env != "CANARYBOT_NOTIFY_SLACK_WEBHOOK_URL" || chans[1].Webhook.SecretFrom.File == "" ||
		strings.Join(chans[0].On, ",") != "reverted,awaitingApproval" || chans[0].OnYAML11 != nil {
		t.Fatalf("decoded %+v", chans)
	}
	if !chans[0].Wants(EventReverted) || chans[0].Wants(EventStarted) || !chans[1].Wants(EventPlanInvalid) {
		t.Error("Wants does not follow on (every event when empty)")
	}
}

// Each bad list is refused with its field path; no message repeats a
// value that may be a secret.
func TestPlanNotificationsRefused(t *testing.T) {
	const secret = "T0001/B0002/XyZsEcReT"
	for name, tc := range map[string]struct{ block, want string }{
		"literal Slack URL": {`  - name: s
    slack: {webhookURL: "https://hooks.slack.com/services/` + secret + `"}
`, "spec.notifications[0].slack.webhookURL: a Slack webhook URL is a secret"},
		"literal signing secret": {`  - name: w
    webhook: {url: "https://h.example/x", secret: "` + secret + `"}
`, "spec.notifications[0].webhook.secret: a signing secret may not be written in Git"},
		"Slack URL as a webhook url": {`  - name: w
    webhook: {url: "https://hooks.slack.com/services/` + secret + `", secretFrom: {env: CANARYBOT_NOTIFY_S}}
`, "spec.notifications[0].webhook.url: carries a credential"},
		"token in the url": {`  - name: w
    webhook: {url: "https://h.example/x?token=` + secret + `", secretFrom: {env: CANARYBOT_NOTIFY_S}}
`, "spec.notifications[0].webhook.url: carries a credential"},
		"user in the url": {`  - name: w
    webhook: {url: "https://bot:XyZsEcReT@h.example/x", secretFrom: {env: CANARYBOT_NOTIFY_S}}
`, "spec.notifications[0].webhook.url: carries a credential"},
		"plain http to a remote host": {`  - name: w
    webhook: {url: "http://h.example/x", secretFrom: {env: CANARYBOT_NOTIFY_S}}
`, "must be https://"},
		"unknown event": {`  - name: s
    on: [started, exploded]
    slack: {webhookURLFrom: {env: CANARYBOT_NOTIFY_S}}
`, `spec.notifications[0].on[1]: unknown event "exploded"`},
		"duplicate names": {`  - name: s
    slack: {webhookURLFrom: {env: CANARYBOT_NOTIFY_S}}
  - name: s
    webhook: {url: "https://h.example/x", secretFrom: {env: CANARYBOT_NOTIFY_S}}
`, `spec.notifications[1].name: duplicate channel "s"`},
		"both slack and webhook": {`  - name: s
    slack: {webhookURLFrom: {env: CANARYBOT_NOTIFY_S}}
    webhook: {url: "https://h.example/x", secretFrom: {env: CANARYBOT_NOTIFY_S}}
`, "spec.notifications[0]: set exactly one of slack and webhook, not both"},
		"neither": {`  - name: s
    on: [held]
`, "spec.notifications[0]: set exactly one of slack and webhook"},
		"name not a DNS label": {`  - name: Team/Slack
    slack: {webhookURLFrom: {env: CANARYBOT_NOTIFY_S}}
`, "spec.notifications[0].name: must be a DNS label"},
		"unsigned webhook": {`  - name: w
    webhook: {url: "https://h.example/x"}
`, "spec.notifications[0].webhook.secretFrom: is required"},
		"env and file": {`  - name: s
    slack: {webhookURLFrom: {env: S, file: /x}}
`, "spec.notifications[0].slack.webhookURLFrom: set exactly one of env and file"},
		"relative file": {`  - name: s
    slack: {webhookURLFrom: {file: secrets/slack}}
`, "spec.notifications[0].slack.webhookURLFrom.file: must be a clean absolute path"},
		"bad env name": {`  - name: s
    slack: {webhookURLFrom: {env: "A B"}}
`, "spec.notifications[0].slack.webhookURLFrom.env: must be an environment variable name"},
		"unknown field": {`  - name: s
    slack: {webhookURLFrom: {env: CANARYBOT_NOTIFY_S}, channel: "#ml"}
`, "spec.notifications[0].slack.channel: unknown field"},
		"unknown secret source field": {`  - name: s
    slack: {webhookURLFrom: {secretKeyRef: {name: x}}}
`, "spec.notifications[0].slack.webhookURLFrom.secretKeyRef: unknown field"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePlan([]byte(withNotifications(tc.block)))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "XyZsEcReT") {
				t.Errorf("the error quotes the secret: %q", err)
			}
		})
	}
}

func TestRepositoryConfigNotifications(t *testing.T) {
	good := `apiVersion: canarybot.dev/v1alpha1
kind: RepositoryConfig
spec:
  plansDir: deploy/plans
  notifications:
  - name: ml-team
    slack: {webhookURLFrom: {env: CANARYBOT_NOTIFY_SLACK_URL}}
`
	cfg, err := ReadRepositoryConfig(fstest.MapFS{ConfigPath: {Data: []byte(good)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Spec.Notifications) != 1 || cfg.Spec.Notifications[0].Name != "ml-team" {
		t.Fatalf("config %+v", cfg.Spec)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown field": {strings.Replace(good, "slack:", "slak:", 1), "spec.notifications[0].slak: unknown field"},
		"literal URL": {strings.Replace(good, "{webhookURLFrom: {env: CANARYBOT_NOTIFY_SLACK_URL}}", `{webhookURL: "https://hooks.slack.com/services/T/B/C"}`, 1),
			"spec.notifications[0].slack.webhookURL: a Slack webhook URL is a secret"},
		"bad event": {strings.Replace(good, "    slack:", "    on: [merged]\n    slack:", 1), `spec.notifications[0].on[0]: unknown event "merged"`},
	} {
		_, err := ReadRepositoryConfig(fstest.MapFS{ConfigPath: {Data: []byte(tc.yaml)}})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), ConfigPath) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
	// Discover reports a bad config and keeps the default plans directory.
	c, err := Discover(Tree{Head: "h", FS: fstest.MapFS{ConfigPath: {Data: []byte(strings.Replace(good, "slack:", "slak:", 1))}}})
	if err != nil || c.ConfigErr == nil || c.PlansDir != DefaultPlansDir {
		t.Errorf("Discover with a bad config: %v, ConfigErr %v, PlansDir %s", err, c.ConfigErr, c.PlansDir)
	}
	if cfg, err := ReadRepositoryConfig(fstest.MapFS{}); cfg != nil || err != nil {
		t.Errorf("no config: %v, %v", cfg, err)
	}
}

// A plan's list, when set, replaces the defaults; an empty list turns
// notifications off.
func TestNotificationsFor(t *testing.T) {
	defaults := []NotificationChannel{{Name: "default"}}
	own, err := ParsePlan([]byte(withNotifications("  - name: own\n    slack: {webhookURLFrom: {env: CANARYBOT_NOTIFY_S}}\n")))
	if err != nil {
		t.Fatal(err)
	}
	off, err := ParsePlan([]byte(goodPlan + "  notifications: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	unset, err := ParsePlan([]byte(goodPlan))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		plan *CanaryPlan
		want string
	}{"own": {own, "own"}, "off": {off, ""}, "unset": {unset, "default"}, "no plan": {nil, "default"}} {
		var names []string
		for _, c := range NotificationsFor(tc.plan, defaults) {
			names = append(names, c.Name)
		}
		if got := strings.Join(names, ","); got != tc.want {
			t.Errorf("%s: channels %q, want %q", name, got, tc.want)
		}
	}
}
