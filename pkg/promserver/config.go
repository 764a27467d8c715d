package promserver

import (
	"fmt"
	"net"
	"time"

	"sigs.k8s.io/yaml"
)

// Target is one scrape target.
type Target struct {
	// Addr is host:port; Prometheus scrapes http://Addr/metrics.
	Addr string
	// Labels are added to every series scraped from Addr.
	Labels map[string]string
}

// promConfig is the subset of prometheus.yml that Start writes.
type promConfig struct {
	Global        globalConfig   `json:"global"`
	ScrapeConfigs []scrapeConfig `json:"scrape_configs"`
}

type globalConfig struct {
	ScrapeInterval     string `json:"scrape_interval"`
	ScrapeTimeout      string `json:"scrape_timeout"`
	EvaluationInterval string `json:"evaluation_interval"`
}

type scrapeConfig struct {
	JobName       string         `json:"job_name"`
	StaticConfigs []staticConfig `json:"static_configs"`
}

type staticConfig struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// RenderConfig returns the prometheus.yml that Start writes for o, with
// o's defaults applied: a global scrape and evaluation interval, and one
// job, named o.JobName, with a static config per target.
func RenderConfig(o Options) ([]byte, error) {
	o = o.withDefaults()
	if o.ScrapeInterval <= 0 {
		return nil, fmt.Errorf("scrape interval must be positive, got %s", o.ScrapeInterval)
	}
	iv := promDuration(o.ScrapeInterval)
	c := promConfig{
		Global:        globalConfig{ScrapeInterval: iv, ScrapeTimeout: iv, EvaluationInterval: iv},
		ScrapeConfigs: []scrapeConfig{},
	}
	if len(o.Targets) > 0 {
		job := scrapeConfig{JobName: o.JobName}
		for i, t := range o.Targets {
			if _, _, err := net.SplitHostPort(t.Addr); err != nil {
				return nil, fmt.Errorf("target %d: address %q is not host:port: %w", i, t.Addr, err)
			}
			job.StaticConfigs = append(job.StaticConfigs, staticConfig{Targets: []string{t.Addr}, Labels: t.Labels})
		}
		c.ScrapeConfigs = append(c.ScrapeConfigs, job)
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("marshal prometheus config: %w", err)
	}
	return b, nil
}

// promDuration renders d in a form Prometheus parses: whole milliseconds.
func promDuration(d time.Duration) string {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return fmt.Sprintf("%dms", ms)
}
