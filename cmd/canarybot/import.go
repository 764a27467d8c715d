package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
	"github.com/canarybot/canarybot/pkg/rolloutsimport"
)

type importOpts struct {
	out          string
	allowPartial bool
	oci, static  string
	mlflowURI    string
	mlflowModel  string
	args         []string
	preset       string
	sigStable    map[string]string
	sigCanary    map[string]string
	ro           rolloutsimport.Options
}

func newImport(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "import", Short: "Write a CanaryPlan from another tool's manifests"}
	c.AddCommand(newImportArgoRollouts(g))
	return c
}

func newImportArgoRollouts(g *globals) *cobra.Command {
	o := &importOpts{}
	c := &cobra.Command{
		Use:   "argo-rollouts ROLLOUT.yaml [ANALYSISTEMPLATE.yaml...]",
		Short: "Write a CanaryPlan from an Argo Rollouts canary Rollout and its AnalysisTemplates (docs/import.md)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, files []string) error {
			return runImport(g, o, files)
		},
	}
	f := c.Flags()
	f.StringVarP(&o.out, "out", "o", "", "write the plan to this file instead of stdout")
	f.BoolVar(&o.allowPartial, "allow-partial", false, "write the plan even when parts of the Rollout were not carried over (they are still listed)")
	f.StringVar(&o.ro.Name, "name", "", "the plan's metadata.name (default: the Rollout's name)")
	f.StringVar(&o.ro.Model, "model", "", "spec.model.name (default: the plan's name)")
	f.StringVar(&o.oci, "oci-repository", "", "spec.model.source.oci.repository (one source is required)")
	f.StringVar(&o.static, "static-uri", "", "spec.model.source.static.uri, a pinned artifact")
	f.StringVar(&o.mlflowURI, "mlflow-tracking-uri", "", "spec.model.source.mlflow.trackingURI (with --mlflow-model)")
	f.StringVar(&o.mlflowModel, "mlflow-model", "", "spec.model.source.mlflow.model")
	f.StringVar(&o.ro.Overlay, "overlay", "", "spec.overlay, the Kustomize overlay the bot edits (required)")
	f.StringVar(&o.ro.Application, "argocd-application", "", "spec.argocd.application (default: the plan's name)")
	f.StringVar(&o.ro.Mode, "traffic-mode", "", "gateway or kserve (default: gateway when the Rollout routes with the Gateway API plugin)")
	f.StringVar(&o.ro.HTTPRoute, "http-route", "", "spec.traffic.gateway.httpRoute (default: the plugin's httpRoute)")
	f.StringVar(&o.ro.InferenceService, "inference-service", "", "spec.traffic.kserve.inferenceService (mode kserve)")
	f.StringVar(&o.ro.StableService, "stable-service", "", "the stable backendRef (default: the Rollout's stableService)")
	f.StringVar(&o.ro.CanaryService, "canary-service", "", "the canary backendRef (default: the Rollout's canaryService)")
	f.StringVar(&o.ro.StableInferenceService, "stable-inference-service", "", "the stable InferenceService (default: the stable service less -predictor)")
	f.StringVar(&o.ro.CanaryInferenceService, "canary-inference-service", "", "the canary InferenceService (default: the canary service less -predictor)")
	f.StringVar(&o.preset, "signals-preset", "", "write spec.signals with this preset (vllm or kserve), for judge gates and canarybot simulate --metrics prometheus")
	f.StringToStringVar(&o.sigStable, "signals-stable", nil, "spec.signals.stable label matchers, e.g. version=stable,namespace=models")
	f.StringToStringVar(&o.sigCanary, "signals-canary", nil, "spec.signals.canary label matchers, e.g. version=canary,namespace=models")
	f.StringArrayVar(&o.args, "arg", nil, "NAME=VALUE for an analysis arg, e.g. one set by valueFrom (repeatable)")
	return c
}

// options completes the importer's options from the flags.
func (o *importOpts) options() (rolloutsimport.Options, error) {
	ro := o.ro
	ro.CheckCondition = gates.CompileCondition
	ro.Args = map[string]string{}
	for _, a := range o.args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return ro, fmt.Errorf("--arg %q: want NAME=VALUE", a)
		}
		ro.Args[k] = v
	}
	var errs []error
	switch {
	case o.oci != "":
		ro.Source.OCI = &canary.OCISource{Repository: o.oci}
	case o.static != "":
		ro.Source.Static = &canary.StaticSource{URI: o.static}
	case o.mlflowURI != "" || o.mlflowModel != "":
		ro.Source.MLflow = &canary.MLflowSource{TrackingURI: o.mlflowURI, Model: o.mlflowModel}
	default:
		errs = append(errs, errors.New("spec.model.source: a Rollout names a server image, not a model artifact: pass --oci-repository, --static-uri or --mlflow-tracking-uri with --mlflow-model"))
	}
	if o.preset != "" {
		ro.Signals = &canary.SignalsSpec{Preset: o.preset, Stable: o.sigStable, Canary: o.sigCanary}
	}
	if ro.Overlay == "" {
		errs = append(errs, errors.New("spec.overlay: pass --overlay, the Kustomize overlay that deploys the model"))
	}
	return ro, errors.Join(errs...)
}

func runImport(g *globals, o *importOpts, files []string) error {
	ro, err := o.options()
	if err != nil {
		return fmt.Errorf("import argo-rollouts: %w", err)
	}
	inputs := make([]rolloutsimport.Input, len(files))
	for i, f := range files {
		b, err := readLimited(f, canary.MaxPlanBytes)
		if err != nil {
			return fmt.Errorf("import argo-rollouts: %w", err)
		}
		inputs[i] = rolloutsimport.Input{Name: f, Data: b}
	}
	res, err := rolloutsimport.Convert(inputs[0], inputs[1:], ro)
	if err != nil {
		return fmt.Errorf("import argo-rollouts: %w", err)
	}
	for _, it := range res.Dropped {
		fmt.Fprintf(g.stderr, "not carried over: %s\n", it)
	}
	for _, it := range res.Notes {
		fmt.Fprintf(g.stderr, "note: %s\n", it)
	}
	out, err := renderImported(res, files)
	if err != nil {
		return fmt.Errorf("import argo-rollouts: %w", err)
	}
	if problems := validateImported(out); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(g.stderr, "invalid plan: %s\n", p)
		}
		return fmt.Errorf("import argo-rollouts: the imported plan does not validate (%d problems above)", len(problems))
	}
	if len(res.Dropped) > 0 && !o.allowPartial {
		fmt.Fprintf(g.stderr, "%d items not carried over; no plan written (--allow-partial writes it anyway)\n", len(res.Dropped))
		return &exitError{code: 1}
	}
	if o.out == "" {
		_, err = g.stdout.Write(out)
	} else if err = os.WriteFile(o.out, out, 0o644); err == nil {
		fmt.Fprintf(g.stderr, "wrote %s\n", o.out)
	}
	if err != nil {
		return fmt.Errorf("import argo-rollouts: write plan: %w", err)
	}
	fmt.Fprint(g.stderr, rolloutsimport.Suggestion(res))
	return nil
}

// renderImported is the plan as YAML, after a comment that names its
// sources and lists what was not carried over.
func renderImported(res *rolloutsimport.Result, files []string) ([]byte, error) {
	body, err := yaml.Marshal(res.Plan)
	if err != nil {
		return nil, fmt.Errorf("marshal plan: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Imported by canarybot import argo-rollouts from %s (docs/import.md).\n", strings.Join(files, ", "))
	if len(res.Dropped) > 0 {
		b.WriteString("# Not carried over:\n")
		for _, it := range res.Dropped {
			fmt.Fprintf(&b, "#   - %s\n", strings.ReplaceAll(it.String(), "\n", " "))
		}
	}
	b.Write(body)
	return []byte(b.String()), nil
}

// validateImported runs the checks of canarybot validate on the plan.
func validateImported(plan []byte) []string {
	dir, err := os.MkdirTemp("", "canarybot-import-")
	if err != nil {
		return []string{err.Error()}
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(p, plan, 0o600); err != nil {
		return []string{err.Error()}
	}
	return validateFile(p, nil)
}
