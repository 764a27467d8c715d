package demo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	canarybot "github.com/canarybot/canarybot"
	"github.com/canarybot/canarybot/pkg/canary"
)

const (
	planPath = "plans/qwen.yaml"
	branch   = "main"
)

// seedRepo creates the bare GitOps repo at dir with one human commit: the
// embedded manifests and the demo plan. It does nothing when dir exists.
func seedRepo(ctx context.Context, dir string, plan []byte, now time.Time) (bool, error) {
	if _, err := os.Stat(dir); err == nil {
		return false, nil
	}
	if _, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		Bare: true, InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(branch)},
	}); err != nil {
		return false, fmt.Errorf("init %s: %w", dir, err)
	}
	work, err := os.MkdirTemp(filepath.Dir(dir), "seed-")
	if err != nil {
		return false, fmt.Errorf("seed work tree: %w", err)
	}
	defer os.RemoveAll(work)
	if err := writeSeedFiles(work, plan); err != nil {
		return false, err
	}
	repo, err := git.PlainInitWithOptions(work, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(branch)},
	})
	if err != nil {
		return false, fmt.Errorf("init seed: %w", err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return false, fmt.Errorf("seed worktree: %w", err)
	}
	if err := wt.AddGlob("."); err != nil {
		return false, fmt.Errorf("stage seed: %w", err)
	}
	sig := &object.Signature{Name: "Platform Team", Email: "platform@example.com", When: now}
	if _, err := wt.Commit("Add qwen manifests and canary plan", &git.CommitOptions{Author: sig}); err != nil {
		return false, fmt.Errorf("commit seed: %w", err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{dir}}); err != nil {
		return false, fmt.Errorf("seed remote: %w", err)
	}
	if err := repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin"}); err != nil {
		return false, fmt.Errorf("push seed: %w", err)
	}
	return true, nil
}

func writeSeedFiles(work string, plan []byte) error {
	err := fs.WalkDir(canarybot.Manifests, "manifests", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := canarybot.Manifests.ReadFile(p)
		if err != nil {
			return err
		}
		return writeFile(filepath.Join(work, filepath.FromSlash(p)), b)
	})
	if err != nil {
		return fmt.Errorf("copy manifests: %w", err)
	}
	readme := "# GitOps repo of the canarybot demo\n\nHumans own manifests/ and plans/; canarybot owns " +
		"manifests/overlays/*/canarybot/ and " + canary.StateDir + "/.\n"
	if err := writeFile(filepath.Join(work, "README.md"), []byte(readme)); err != nil {
		return err
	}
	return writeFile(filepath.Join(work, filepath.FromSlash(planPath)), plan)
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("mkdir for %s: %w", p, err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// bootstrap commits the first state: stable serves v1 at 100%.
func bootstrap(ctx context.Context, repo canary.Repo, r canary.Renderer, stable canary.Artifact) (canary.CommitResult, error) {
	return repo.Transact(ctx, func(ctx context.Context, t canary.Tree) (*canary.Change, error) {
		if _, err := fs.Stat(t.FS, canary.StatePath("qwen")); err == nil {
			return nil, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("stat state: %w", err)
		}
		plan, err := canary.ReadPlan(t, planPath)
		if err != nil {
			return nil, err
		}
		st := canary.NewState(plan.Metadata.Name, stable)
		files, err := r.Render(ctx, t, plan, canary.DesiredOf(st))
		if err != nil {
			return nil, fmt.Errorf("render bootstrap: %w", err)
		}
		sb, err := canary.MarshalState(st)
		if err != nil {
			return nil, err
		}
		files[canary.StatePath(plan.Metadata.Name)] = sb
		return &canary.Change{
			Files: files, Subject: fmt.Sprintf("canary(%s): adopt %s as stable", plan.Metadata.Name, stable.Version),
			Trailers: []canary.Trailer{{Key: canary.TrailerPlan, Value: plan.Metadata.Name},
				{Key: canary.TrailerAction, Value: "adopt"}, {Key: canary.TrailerArtifact, Value: stable.URI}},
		}, nil
	})
}
