package gitops

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
)

// ErrUnsafePath marks a change path that could write outside the work tree
// or into Git's own files. Errors carrying it are also canary.Terminal.
var ErrUnsafePath = errors.New("unsafe repo path")

// CheckPath reports whether p is a safe repo-relative slash path for a
// file canarybot writes: not empty, not absolute, in clean form, with no
// "." or ".." element, no backslash or control character, and no ".git"
// element in any case.
func CheckPath(p string) error {
	reason := pathProblem(p)
	if reason == "" {
		return nil
	}
	return canary.Terminal(fmt.Errorf("%w %q: %s", ErrUnsafePath, p, reason))
}

func pathProblem(p string) string {
	switch {
	case p == "":
		return "empty"
	case strings.HasPrefix(p, "/") || filepath.IsAbs(p) || filepath.VolumeName(p) != "":
		return "absolute"
	case strings.ContainsRune(p, '\\'):
		return "contains a backslash"
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "contains a control character"
	}
	for _, part := range strings.Split(p, "/") {
		switch {
		case part == "..":
			return "escapes the repository"
		case part == "." || part == "":
			return "not in clean form"
		case isDotGit(part):
			return "inside .git"
		}
	}
	if path.Clean(p) != p {
		return "not in clean form"
	}
	return ""
}

// isDotGit matches ".git" as file systems that fold case, trailing dots
// and spaces, or 8.3 names may resolve it.
func isDotGit(part string) bool {
	s := strings.ToLower(strings.TrimRight(part, ". "))
	return s == ".git" || s == "git~1"
}

// checkNoSymlink verifies that writing rel under root follows no symbolic
// link and crosses no non-directory, so the write stays inside root even
// when the repo itself contains links.
func checkNoSymlink(root, rel string) error {
	parts := strings.Split(rel, "/")
	cur := root
	for i, part := range parts {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stat %s: %w", rel, err)
		}
		last := i == len(parts)-1
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return canary.Terminal(fmt.Errorf("%w %q: %s is a symbolic link", ErrUnsafePath, rel, path.Join(parts[:i+1]...)))
		case !last && !fi.IsDir():
			return canary.Terminal(fmt.Errorf("%w %q: %s is not a directory", ErrUnsafePath, rel, path.Join(parts[:i+1]...)))
		case last && !fi.Mode().IsRegular():
			return canary.Terminal(fmt.Errorf("%w %q: not a regular file", ErrUnsafePath, rel))
		}
	}
	return nil
}

// writeFile writes content to rel under root after re-checking the path.
func writeFile(root, rel string, content []byte) error {
	if err := CheckPath(rel); err != nil {
		return err
	}
	if err := checkNoSymlink(root, rel); err != nil {
		return err
	}
	full := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	if err := os.WriteFile(full, content, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	return nil
}
