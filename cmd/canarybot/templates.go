package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
)

// maxTemplateFiles bounds the files --templates reads.
const maxTemplateFiles = 1000

// readGateTemplates reads the GateTemplate documents of each path (a YAML
// file, or every *.yaml and *.yml directly in a directory).
func readGateTemplates(paths []string) (canary.GateTemplates, error) {
	set := canary.GateTemplates{}
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("gate templates: %w", err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("gate templates: %w", err)
		}
		for _, e := range entries {
			if n := e.Name(); e.Type().IsRegular() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
				files = append(files, filepath.Join(p, n))
			}
		}
	}
	if len(files) > maxTemplateFiles {
		return nil, fmt.Errorf("gate templates: %d files, over the limit of %d", len(files), maxTemplateFiles)
	}
	var errs []error
	for _, f := range files {
		b, err := readLimited(f, canary.MaxPlanBytes)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, set.AddFile(f, b))
	}
	return set, errors.Join(errs...)
}

// readPlanFile reads, defaults and validates the plan at path. A plan
// whose gates use GateTemplates is resolved with the templates in
// templatePaths, or, when none are given, in the plan's own directory, as
// the repository keeps them beside its plans. It returns the plan and its
// YAML, resolved, for tools that take a plan's bytes.
func readPlanFile(path string, templatePaths []string) (*canary.CanaryPlan, []byte, error) {
	b, err := readLimited(path, canary.MaxPlanBytes)
	if err != nil {
		return nil, nil, err
	}
	decoded, err := canary.DecodePlan(b)
	if err != nil || !decoded.UsesTemplates() {
		plan, err := canary.ParsePlan(b)
		return plan, b, err
	}
	if len(templatePaths) == 0 {
		templatePaths = []string{filepath.Dir(path)}
	}
	templates, err := readGateTemplates(templatePaths)
	if err != nil {
		return nil, nil, err
	}
	plan, err := canary.ParsePlanWith(b, templates)
	if err != nil {
		return nil, nil, err
	}
	resolved, err := canary.ResolvedYAML(plan)
	if err != nil {
		return nil, nil, err
	}
	return plan, resolved, nil
}
