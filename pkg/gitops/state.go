package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
)

// ValidatePlanName checks that name is a DNS-1123 subdomain (lower-case
// alphanumerics, '-' and '.', at most 253 characters, no empty label), as
// Kubernetes requires of metadata.name. Such a name has no slash and no
// "..", so it cannot traverse out of canary.StateDir.
func ValidatePlanName(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%w: plan name %q must be 1 to 253 characters", canary.ErrInvalidPlan, name)
	}
	for _, label := range strings.Split(name, ".") {
		if !isDNS1123Label(label) {
			return fmt.Errorf("%w: plan name %q is not a DNS-1123 subdomain", canary.ErrInvalidPlan, name)
		}
	}
	return nil
}

// isDNS1123Label matches [a-z0-9]([-a-z0-9]*[a-z0-9])? of at most 63.
func isDNS1123Label(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// ReadState reads plan's state at rev ("" for the branch head). It returns
// nil and no error when the plan has no state file yet.
func (r *Reader) ReadState(ctx context.Context, rev, plan string) (*canary.RolloutState, error) {
	if err := ValidatePlanName(plan); err != nil {
		return nil, err
	}
	b, err := r.ReadFile(ctx, rev, canary.StatePath(plan))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := canary.ParseState(b)
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", plan, err)
	}
	return s, nil
}

// StatePlans lists the plans that have a state file at rev, sorted.
func (r *Reader) StatePlans(ctx context.Context, rev string) ([]string, error) {
	files, err := r.ListFiles(ctx, rev, canary.StateDir)
	if err != nil {
		return nil, err
	}
	var plans []string
	for _, f := range files {
		if path.Dir(f) != canary.StateDir || !strings.HasSuffix(f, ".yaml") {
			continue
		}
		name := strings.TrimSuffix(path.Base(f), ".yaml")
		if ValidatePlanName(name) == nil {
			plans = append(plans, name)
		}
	}
	sort.Strings(plans)
	return plans, nil
}
