package metrics

import "github.com/prometheus/client_golang/prometheus"

// Notifications counts the notifier's deliveries (pkg/notify); it
// implements notify.Metrics. Channels are named per repository in
// spec.notifications or .canarybot/config.yaml.
type Notifications struct {
	sent     *prometheus.CounterVec
	failures *prometheus.CounterVec
}

func newNotifications() *Notifications {
	return &Notifications{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "canarybot_notifications_sent_total",
			Help: "Notifications delivered, by channel and event (started, advanced, awaitingApproval, held, promoted, " +
				"reverted, planInvalid)."}, []string{"channel", "event"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "canarybot_notification_failures_total",
			Help: "Failed notification delivery attempts, by channel; each is retried with backoff."}, []string{"channel"}),
	}
}

func (n *Notifications) collectors() []prometheus.Collector {
	return []prometheus.Collector{n.sent, n.failures}
}

// Sent counts one notification delivered.
func (n *Notifications) Sent(channel, event string) { n.sent.WithLabelValues(channel, event).Inc() }

// Failed counts one failed delivery attempt.
func (n *Notifications) Failed(channel string) { n.failures.WithLabelValues(channel).Inc() }

// Notifications returns the notification counters registered with r.
func (r *Recorder) Notifications() *Notifications { return r.notifications }
