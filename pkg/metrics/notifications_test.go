package metrics_test

import (
	"testing"

	"github.com/canarybot/canarybot/internal/promtooltest"
)

// The notifier's counters add up per channel and event, and the scrape
// passes `promtool check metrics`.
func TestNotificationCounters(t *testing.T) {
	f := newFixture(t)
	n := f.rec.Notifications()
	n.Sent("ml-team", "started")
	n.Sent("ml-team", "reverted")
	n.Sent("ml-team", "reverted")
	n.Failed("pager")
	n.Failed("pager")
	n.Sent("pager", "reverted")
	body, s := f.scrape(t)
	for series, want := range map[string]float64{
		`canarybot_notifications_sent_total{channel="ml-team",event="started"}`:  1,
		`canarybot_notifications_sent_total{channel="ml-team",event="reverted"}`: 2,
		`canarybot_notifications_sent_total{channel="pager",event="reverted"}`:   1,
		`canarybot_notification_failures_total{channel="pager"}`:                 2,
	} {
		if got, ok := s[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	promtooltest.CheckMetrics(t, body)
}
