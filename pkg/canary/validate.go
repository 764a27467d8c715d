package canary

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
)

// Defaults applied by Default. Threshold gate defaults follow Argo Rollouts.
const (
	DefaultSyncTimeout           = 10 * time.Minute
	DefaultGateInterval          = time.Minute
	DefaultGateCount             = 5
	DefaultConsecutiveErrorLimit = 4
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Default fills every optional field with its documented default.
func (p *CanaryPlan) Default() {
	s := &p.Spec
	if s.Concurrency == "" {
		s.Concurrency = ConcurrencyQueue
	}
	if o := s.Model.Source.OCI; o != nil && o.Policy == "" {
		o.Policy = OCIPolicySemver
	}
	if s.ArgoCD.SyncTimeout == nil {
		s.ArgoCD.SyncTimeout = D(DefaultSyncTimeout)
	}
	r := &s.Rollback
	r.OnFailure = or(r.OnFailure, ActionRevert)
	r.OnInconclusive = or(r.OnInconclusive, ActionHold)
	r.OnError = or(r.OnError, ActionHold)
	r.OnSyncFailure = or(r.OnSyncFailure, ActionRevert)
	p.defaultSignalGates()
	p.defaultRoutes()
	p.defaultGoldenRoutes()
	normalizeNotifications(s.Notifications)
	for i := range s.Gates {
		g := &s.Gates[i]
		if g.Type == "" && g.Threshold != nil {
			g.Type = GateThreshold
		}
		if t := g.Threshold; t != nil {
			if t.Interval == nil {
				t.Interval = D(DefaultGateInterval)
			}
			if t.InitialDelay == nil {
				t.InitialDelay = D(0)
			}
			t.Count = orInt(t.Count, DefaultGateCount)
			t.FailureLimit = orInt(t.FailureLimit, 0)
			t.InconclusiveLimit = orInt(t.InconclusiveLimit, 0)
			t.ConsecutiveErrorLimit = orInt(t.ConsecutiveErrorLimit, DefaultConsecutiveErrorLimit)
		}
	}
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func orInt(v *int, def int) *int {
	if v == nil {
		return &def
	}
	return v
}

// Validate returns every problem in the plan, each with its field path.
func (p *CanaryPlan) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if p.APIVersion != APIVersion {
		add("apiVersion", "must be %q, got %q", APIVersion, p.APIVersion)
	}
	if p.Kind != KindCanaryPlan {
		add("kind", "must be %q, got %q", KindCanaryPlan, p.Kind)
	}
	if !validName(p.Metadata.Name) {
		add("metadata.name", "must be a DNS label (lower-case letters, digits and '-', at most 63), got %q", p.Metadata.Name)
	}
	s := &p.Spec
	if s.Model.Name == "" {
		add("spec.model.name", "is required")
	}
	validateSource(s.Model.Source, add)
	validateTraffic(s.Traffic, add)
	validateOverlay(s.Overlay, add)
	validateArgoApp(s.ArgoCD.Application, add)
	if d := s.ArgoCD.SyncTimeout; d != nil && d.Duration <= 0 {
		add("spec.argocd.syncTimeout", "must be positive, got %s", d.Duration)
	}
	gates := validateGates(s.Gates, add)
	validateSteps(s.Steps, gates, add)
	validateRoutes(s, add)
	validateGoldenRoutes(s, add)
	if b := s.BackgroundAnalysis; b != nil {
		for j, g := range b.Gates {
			if !gates[g] {
				add(fmt.Sprintf("spec.backgroundAnalysis.gates[%d]", j), "no gate named %q in spec.gates", g)
			}
		}
	}
	validateRollback(s.Rollback, add)
	validateNotifications("spec.notifications", s.Notifications, add)
	if s.Concurrency != ConcurrencyQueue && s.Concurrency != ConcurrencySupersede {
		add("spec.concurrency", "must be %q or %q, got %q", ConcurrencyQueue, ConcurrencySupersede, s.Concurrency)
	}
	return errors.Join(errs...)
}

type addFunc func(field, format string, args ...any)

func validName(s string) bool { return len(s) <= 63 && dnsLabel.MatchString(s) }

// CheckRepoPath rejects a repo path that is empty, absolute, unclean or
// escapes the repository root.
func CheckRepoPath(p string) error {
	switch {
	case p == "":
		return errors.New("is required")
	case strings.HasPrefix(p, "/") || strings.Contains(p, "\\"):
		return fmt.Errorf("must be a relative slash path inside the repo, got %q", p)
	case path.Clean(p) != p:
		return fmt.Errorf("must be a clean path (try %q), got %q", path.Clean(p), p)
	case p == ".." || strings.HasPrefix(p, "../") || p == ".git" || strings.HasPrefix(p, ".git/"):
		return fmt.Errorf("must stay inside the repo and out of .git, got %q", p)
	}
	return nil
}

func validateTraffic(t TrafficSpec, add addFunc) {
	switch t.Mode {
	case ModeKServe:
		if t.Gateway != nil {
			add("spec.traffic.gateway", "must be empty in mode %q", ModeKServe)
		}
		if t.LLMISVC != nil {
			add("spec.traffic.llmisvc", "must be empty in mode %q", ModeKServe)
		}
		if t.KServe == nil {
			add("spec.traffic.kserve", "is required in mode %q", ModeKServe)
		} else if !validName(t.KServe.InferenceService) {
			add("spec.traffic.kserve.inferenceService", "must be a DNS label, got %q", t.KServe.InferenceService)
		}
	case ModeGateway:
		if t.KServe != nil {
			add("spec.traffic.kserve", "must be empty in mode %q", ModeGateway)
		}
		if t.LLMISVC != nil {
			add("spec.traffic.llmisvc", "must be empty in mode %q", ModeGateway)
		}
		if t.Gateway == nil {
			add("spec.traffic.gateway", "is required in mode %q", ModeGateway)
			return
		}
		g := t.Gateway
		if !validName(g.HTTPRoute) {
			add("spec.traffic.gateway.httpRoute", "must be a DNS label, got %q", g.HTTPRoute)
		}
		for _, sb := range []struct {
			side string
			b    Backend
		}{{"stable", g.Stable}, {"canary", g.Canary}} {
			side, b := sb.side, sb.b
			if !validName(b.InferenceService) {
				add("spec.traffic.gateway."+side+".inferenceService", "must be a DNS label, got %q", b.InferenceService)
			}
			if !validName(b.Service) {
				add("spec.traffic.gateway."+side+".service", "must be a DNS label, got %q", b.Service)
			}
		}
		if g.Stable.Service != "" && g.Stable.Service == g.Canary.Service {
			add("spec.traffic.gateway.canary.service", "must differ from the stable service %q", g.Stable.Service)
		}
		if g.Stable.InferenceService != "" && g.Stable.InferenceService == g.Canary.InferenceService {
			add("spec.traffic.gateway.canary.inferenceService", "must differ from the stable one %q", g.Stable.InferenceService)
		}
	case ModeLLMISVC:
		validateLLMISVCTraffic(t, add)
	default:
		add("spec.traffic.mode", "must be %q, %q or %q, got %q", ModeKServe, ModeGateway, ModeLLMISVC, t.Mode)
	}
}
