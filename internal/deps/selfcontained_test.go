package deps

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNothingReadsBesideTheClone: a clone on GitHub has nothing beside
// it, so no Go source, script, CI file or the Makefile may name the shared
// folder beside it by a relative path. The scenarios the tests and `make bench` use are copied into
// bench/scenarios/shared.
func TestNothingReadsBesideTheClone(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Spelled in two parts so that this file does not match itself.
	banned := ".." + "/shared"
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "bin" && rel == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		if !checkedFile(rel, d.Name()) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, banned) {
				t.Errorf("%s:%d names %s, outside the repository: %s", rel, i+1, banned, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("checked only %d files under %s", checked, root)
	}
}

// checkedFile says which files TestNothingReadsBesideTheClone reads: Go
// sources (tests included), shell scripts, the Makefile and CI files.
func checkedFile(rel, name string) bool {
	switch {
	case strings.HasSuffix(name, ".go"), strings.HasSuffix(name, ".sh"), name == "Makefile":
		return true
	case strings.HasPrefix(rel, ".ci"+string(filepath.Separator)), strings.HasPrefix(rel, ".github"+string(filepath.Separator)):
		return true
	}
	return false
}
