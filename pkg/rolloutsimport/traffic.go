package rolloutsimport

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
)

// GatewayPlugin is the Argo Rollouts Gateway API traffic router plugin.
const GatewayPlugin = "argoproj-labs/gatewayAPI"

type gatewayPlugin struct {
	HTTPRoute  string `json:"httpRoute"`
	HTTPRoutes []struct {
		Name string `json:"name"`
	} `json:"httpRoutes"`
}

// traffic builds spec.traffic from the Gateway API plugin's route and the
// canary strategy's services, or from the options.
func (c *converter) traffic(strat map[string]json.RawMessage) (canary.TrafficSpec, error) {
	var stable, canarySvc string
	for k, p := range map[string]*string{"stableService": &stable, "canaryService": &canarySvc} {
		s, _, err := str(strat[k])
		if err != nil {
			return canary.TrafficSpec{}, fmt.Errorf("%s: %w", c.rpath("spec.strategy.canary."+k), err)
		}
		*p = s
	}
	route, err := c.route(strat["trafficRouting"])
	if err != nil {
		return canary.TrafficSpec{}, err
	}
	mode := c.opts.Mode
	if mode == "" && route != "" {
		mode = canary.ModeGateway
	}
	switch mode {
	case canary.ModeKServe:
		if c.opts.InferenceService == "" {
			return canary.TrafficSpec{}, fmt.Errorf("traffic mode kserve needs the InferenceService (--inference-service)")
		}
		return canary.TrafficSpec{Mode: mode, KServe: &canary.KServeTraffic{InferenceService: c.opts.InferenceService}}, nil
	case canary.ModeGateway:
		g := &canary.GatewayTraffic{HTTPRoute: or(c.opts.HTTPRoute, route)}
		g.Stable = c.backend("stable", or(c.opts.StableService, stable), c.opts.StableInferenceService)
		g.Canary = c.backend("canary", or(c.opts.CanaryService, canarySvc), c.opts.CanaryInferenceService)
		if g.HTTPRoute == "" || g.Stable.Service == "" || g.Canary.Service == "" {
			return canary.TrafficSpec{}, fmt.Errorf("%s: traffic mode gateway needs an HTTPRoute and stable and canary services: "+
				"the Rollout's trafficRouting.plugins[%q].httpRoute, stableService and canaryService, or --http-route, --stable-service, --canary-service",
				c.src.rollout.file, GatewayPlugin)
		}
		return canary.TrafficSpec{Mode: mode, Gateway: g}, nil
	case "":
		return canary.TrafficSpec{}, fmt.Errorf("%s: spec.strategy.canary.trafficRouting: no Gateway API plugin route to split traffic with; "+
			"choose --traffic-mode gateway (with --http-route and services) or kserve (with --inference-service)", c.src.rollout.file)
	}
	return canary.TrafficSpec{}, fmt.Errorf("traffic mode must be %q or %q, got %q", canary.ModeGateway, canary.ModeKServe, mode)
}

// backend names one side: its Service and its InferenceService (by
// default the service less a "-predictor" suffix, as KServe names it).
func (c *converter) backend(side, svc, isvc string) canary.Backend {
	if isvc == "" && svc != "" {
		isvc = strings.TrimSuffix(svc, "-predictor")
		c.note(c.rpath("spec.strategy.canary."+side+"Service"), "spec.traffic.gateway.%s.inferenceService taken as %q; set --%s-inference-service", side, isvc, side)
	}
	return canary.Backend{Service: svc, InferenceService: isvc}
}

// route reads trafficRouting: the Gateway API plugin's HTTPRoute; any
// other router is dropped.
func (c *converter) route(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		if c.opts.Mode != "" {
			c.note(c.rpath("spec.strategy.canary"), "no trafficRouting: Argo Rollouts weighs by replicas; canarybot splits traffic in mode %s", c.opts.Mode)
		}
		return "", nil
	}
	var tr map[string]json.RawMessage
	if err := json.Unmarshal(raw, &tr); err != nil {
		return "", fmt.Errorf("%s: %w", c.rpath("spec.strategy.canary.trafficRouting"), err)
	}
	route := ""
	for _, k := range sortedKeys(tr) {
		f := "spec.strategy.canary.trafficRouting." + k
		if k == "managedRoutes" {
			c.note(c.rpath(f), "canarybot needs no list of managed routes: it owns the header and mirror routes its steps add (gateway mode)")
			continue
		}
		if k != "plugins" {
			c.drop(c.rpath(f), "only the Gateway API plugin (%s) maps to canarybot's gateway mode", GatewayPlugin)
			continue
		}
		var plugins map[string]json.RawMessage
		if err := json.Unmarshal(tr[k], &plugins); err != nil {
			return "", fmt.Errorf("%s: %w", c.rpath(f), err)
		}
		for _, name := range sortedKeys(plugins) {
			pf := fmt.Sprintf("%s[%q]", f, name)
			if name != GatewayPlugin {
				c.drop(c.rpath(pf), "only the Gateway API plugin (%s) maps to canarybot's gateway mode", GatewayPlugin)
				continue
			}
			var gp gatewayPlugin
			if err := json.Unmarshal(plugins[name], &gp); err != nil {
				return "", fmt.Errorf("%s: %w", c.rpath(pf), err)
			}
			c.pluginKeys(pf, plugins[name])
			route = gp.HTTPRoute
			for i, r := range gp.HTTPRoutes {
				if i == 0 && route == "" {
					route = r.Name
					continue
				}
				c.drop(c.rpath(fmt.Sprintf("%s.httpRoutes[%d]", pf, i)), "canarybot splits one HTTPRoute per plan")
			}
		}
	}
	return route, nil
}

// pluginKeys lists the Gateway API plugin's keys other than the route.
func (c *converter) pluginKeys(pf string, raw json.RawMessage) {
	var keys map[string]json.RawMessage
	if json.Unmarshal(raw, &keys) != nil {
		return
	}
	for _, k := range sortedKeys(keys) {
		switch k {
		case "httpRoute", "httpRoutes":
		case "namespace":
			c.note(c.rpath(pf+"."+k), "canarybot edits the HTTPRoute of that name in spec.overlay, in whatever namespace it is")
		default:
			c.drop(c.rpath(pf+"."+k), "canarybot's gateway mode has no equivalent")
		}
	}
}
